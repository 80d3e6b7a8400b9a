//! Resume intake: text extraction in memory and profile derivation.
//!
//! The uploaded bytes are only ever borrowed as `&[u8]`: nothing here writes to disk or keeps
//! the bytes. The server never calls [`extract`] itself: [`worker::ExtractionSandbox`] runs it in
//! a capped child process, so a hostile file costs that process, not the server. [`extract`] turns a PDF, DOCX or plain-text upload into normalized
//! text; [`derive_profile_locally`] turns that text into a [`ResumeProfile`] without any network;
//! [`llm_profile_prompt`] and [`parse_llm_profile`] are the two halves of the Claude path, whose
//! transport lives elsewhere.
//!
//! Errors carry no file content, so their `Display` is safe for responses and logs;
//! [`ResumeError::code`] gives a stable machine-readable code for the HTTP layer (all of them are
//! client errors).
//!
//! Derivation is CPU-bound (milliseconds): call it from `web::block` / `spawn_blocking`, not
//! directly on an async worker.

mod extract;
mod profile;
pub mod worker;

#[cfg(test)]
mod extract_tests;
#[cfg(test)]
mod profile_tests;

pub use extract::{
    MAX_DOCX_XML_BYTES, MAX_PDF_OBJECTS, MAX_PDF_PAGE_TREE, MAX_PDF_PAGES, MAX_TEXT_CHARS, extract,
};
pub use profile::{
    ProfileParseError, ResumeProfile, derive_profile_locally, llm_profile_prompt, parse_llm_profile,
};

use serde::{Deserialize, Serialize};

/// The default upload limit for a resume (the route answers 413 above its configured limit;
/// [`extract`] itself takes whatever slice it is given).
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// The formats an upload may have; detected from the bytes, never trusted from the client.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ResumeFormat {
    Pdf,
    Docx,
    Text,
}

impl ResumeFormat {
    /// The stable name, as in JSON: `pdf`, `docx` or `text`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResumeFormat::Pdf => "pdf",
            ResumeFormat::Docx => "docx",
            ResumeFormat::Text => "text",
        }
    }
}

impl std::fmt::Display for ResumeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of an upload, normalized (see [`extract`]), and the format it was found to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractedResume {
    pub format: ResumeFormat,
    pub text: String,
}

/// Why an upload could not be turned into text. Every variant is the client's to fix (4xx); the
/// messages never contain anything from the file.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    #[error("unsupported file type: upload a PDF, a DOCX or a plain-text (UTF-8) file")]
    UnsupportedType,
    #[error("the file is damaged or not what its type says and could not be read")]
    Corrupt,
    #[error("the file is password-protected or encrypted; upload an unprotected copy")]
    Encrypted,
    #[error("no text was found in the file (a scanned or image-only document cannot be read)")]
    Empty,
    #[error("the file contains more text than a resume can have")]
    TooMuchText,
    /// Over a parser or worker limit: memory, CPU time, wall-clock time, decompressed bytes,
    /// objects or pages.
    #[error(
        "the file is too complex to read within the limits for a resume; export a simpler PDF or \
         upload plain text"
    )]
    TooComplex,
}

impl ResumeError {
    /// A stable code for API clients and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ResumeError::UnsupportedType => "unsupported_file_type",
            ResumeError::Corrupt => "corrupt_file",
            ResumeError::Encrypted => "encrypted_file",
            ResumeError::Empty => "empty_resume",
            ResumeError::TooMuchText => "resume_too_long",
            ResumeError::TooComplex => "resume_too_complex",
        }
    }

    /// The error whose [`code`](Self::code) this is.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            ResumeError::UnsupportedType,
            ResumeError::Corrupt,
            ResumeError::Encrypted,
            ResumeError::Empty,
            ResumeError::TooMuchText,
            ResumeError::TooComplex,
        ]
        .into_iter()
        .find(|error| error.code() == code)
    }
}
