//! Format detection and text extraction, all from a borrowed byte slice.
//!
//! The format is decided by the bytes (magic numbers); the declared content type and the file
//! name are hints used only to choose between "corrupt" and "unsupported" when the bytes match
//! nothing. Third-party parsers run under `catch_unwind` and with size limits, so a hostile file
//! yields an error, never a panic escaping to the caller or an unbounded allocation.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::content::Content;
use lopdf::{Document, Encoding, LoadOptions, Object, ObjectId};
use quick_xml::events::Event;

use super::{ExtractedResume, ResumeError, ResumeFormat};

/// The most characters of normalized text accepted; a resume is a few thousand.
pub const MAX_TEXT_CHARS: usize = 200_000;
/// PDF pages read; pages after these are ignored (a resume has a handful).
pub const MAX_PDF_PAGES: usize = 50;
/// The most bytes `word/document.xml` may inflate to (zip-bomb guard).
pub const MAX_DOCX_XML_BYTES: u64 = 20 * 1024 * 1024;
/// The most bytes any single PDF stream may inflate to (decompression-bomb guard).
const MAX_PDF_STREAM_BYTES: usize = 8 * 1024 * 1024;
/// The most objects a PDF may hold; a resume has hundreds.
pub const MAX_PDF_OBJECTS: usize = 50_000;
/// The most pages a PDF's page tree may list (only [`MAX_PDF_PAGES`] are read).
pub const MAX_PDF_PAGE_TREE: usize = 2_000;
/// The most content-stream bytes decoded for one page (a resume page has tens of KB; decoded
/// operations take tens of times their text's size in memory).
const MAX_PDF_PAGE_CONTENT_BYTES: usize = 4 * 1024 * 1024;
/// The most content-stream bytes decoded over all pages read (a shared content stream counts
/// once per page that shows it).
const MAX_PDF_CONTENT_BYTES: usize = 12 * 1024 * 1024;
/// The most content-stream operations interpreted over all pages read.
const MAX_PDF_OPERATIONS: usize = 400_000;
/// Raw extracted text beyond this cannot normalize to under [`MAX_TEXT_CHARS`] in practice;
/// stop early instead of building it (bytes, UTF-8 is at most 4 per char).
const MAX_RAW_TEXT_BYTES: usize = MAX_TEXT_CHARS * 8;
/// Where a PDF header may start (readers accept some leading junk).
const PDF_HEADER_WINDOW: usize = 1024;

const PDF_MAGIC: &[u8] = b"%PDF-";
const ZIP_MAGICS: [&[u8]; 3] = [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"];
/// OLE2 compound file: legacy `.doc`, or a password-protected OOXML file wrapped by Office.
const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const DOCX_MAIN_PART: &str = "word/document.xml";

/// Extracts normalized text from an uploaded resume held in memory.
///
/// Detection: `%PDF-` (within the first KiB) is a PDF; a zip holding `word/document.xml` is a
/// DOCX; an OLE2 compound file is a password-protected Office document ([`ResumeError::Encrypted`])
/// when it holds an `EncryptedPackage` stream or was declared a DOCX, else a legacy format
/// ([`ResumeError::UnsupportedType`]); anything else must be UTF-8 text (a UTF-8 BOM is dropped,
/// UTF-16 with a BOM is decoded) without NUL bytes or a noticeable share of control characters.
///
/// The text is normalized: line endings become `\n`, control and invisible format characters are
/// dropped, runs of spaces collapse, lines are trimmed and at most one blank line is kept between
/// paragraphs. Over [`MAX_TEXT_CHARS`] characters is [`ResumeError::TooMuchText`]; nothing left
/// is [`ResumeError::Empty`].
pub fn extract(
    bytes: &[u8],
    declared_content_type: Option<&str>,
    filename: Option<&str>,
) -> Result<ExtractedResume, ResumeError> {
    if bytes.is_empty() {
        return Err(ResumeError::Empty);
    }
    let hint = hinted_format(declared_content_type, filename);
    let (format, raw) = if is_pdf(bytes) {
        (ResumeFormat::Pdf, guarded(|| pdf_text(bytes))?)
    } else if ZIP_MAGICS.iter().any(|magic| bytes.starts_with(magic)) {
        (
            ResumeFormat::Docx,
            guarded(|| docx_text(bytes, hint, MAX_DOCX_XML_BYTES))?,
        )
    } else if bytes.starts_with(OLE_MAGIC) {
        return Err(ole_error(bytes, hint));
    } else {
        (ResumeFormat::Text, plain_text(bytes, hint)?)
    };
    let text = normalize_text(&raw);
    if text.is_empty() {
        return Err(ResumeError::Empty);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ResumeError::TooMuchText);
    }
    Ok(ExtractedResume { format, text })
}

/// Runs a parser that may panic on hostile input; a panic becomes [`ResumeError::Corrupt`].
/// Nothing the closure touches outlives it, so no broken invariant can be observed afterwards.
fn guarded<T>(parse: impl FnOnce() -> Result<T, ResumeError>) -> Result<T, ResumeError> {
    catch_unwind(AssertUnwindSafe(parse)).unwrap_or(Err(ResumeError::Corrupt))
}

/// What the client said the file is: content type first, then the extension.
fn hinted_format(content_type: Option<&str>, filename: Option<&str>) -> Option<ResumeFormat> {
    let by_type = content_type.and_then(|declared| {
        let essence = declared.split(';').next().unwrap_or_default().trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/pdf" | "application/x-pdf" => Some(ResumeFormat::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Some(ResumeFormat::Docx)
            }
            "text/plain" | "text/markdown" => Some(ResumeFormat::Text),
            _ => None,
        }
    });
    by_type.or_else(|| {
        let (_, extension) = filename?.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "pdf" => Some(ResumeFormat::Pdf),
            "docx" => Some(ResumeFormat::Docx),
            "txt" | "text" | "md" => Some(ResumeFormat::Text),
            _ => None,
        }
    })
}

fn is_pdf(bytes: &[u8]) -> bool {
    let window = &bytes[..bytes.len().min(PDF_HEADER_WINDOW)];
    contains(window, PDF_MAGIC)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// The error for an OLE2 compound file: Office wraps password-protected DOCX files this way, and
/// legacy binary `.doc` files use the same container.
fn ole_error(bytes: &[u8], hint: Option<ResumeFormat>) -> ResumeError {
    // Stream names in the directory are UTF-16LE.
    let encrypted_package: Vec<u8> = "EncryptedPackage"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    if hint == Some(ResumeFormat::Docx) || contains(bytes, &encrypted_package) {
        ResumeError::Encrypted
    } else {
        ResumeError::UnsupportedType
    }
}

// ---------------------------------------------------------------------------------------------
// PDF

fn pdf_text(bytes: &[u8]) -> Result<String, ResumeError> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_PDF_STREAM_BYTES),
        ..LoadOptions::default()
    };
    let document = match Document::load_mem_with_options(bytes, options) {
        Ok(document) => document,
        // A security handler lopdf cannot set up fails the load; the trailer still says why.
        Err(_) if contains(bytes, b"/Encrypt") => return Err(ResumeError::Encrypted),
        Err(_) => return Err(ResumeError::Corrupt),
    };
    // Any security handler counts, even an empty user password: the owner asked for protection,
    // and the decryption code paths are best kept away from untrusted input.
    if document.trailer.has(b"Encrypt") {
        return Err(ResumeError::Encrypted);
    }
    if document.objects.len() > MAX_PDF_OBJECTS {
        return Err(ResumeError::TooComplex);
    }
    let pages = document.get_pages();
    if pages.is_empty() {
        return Err(ResumeError::Corrupt);
    }
    if pages.len() > MAX_PDF_PAGE_TREE {
        return Err(ResumeError::TooComplex);
    }
    let mut text = String::new();
    let mut readable_pages = 0usize;
    let mut budget = ContentBudget {
        bytes: MAX_PDF_CONTENT_BYTES,
        operations: MAX_PDF_OPERATIONS,
    };
    for page_id in pages.values().take(MAX_PDF_PAGES) {
        match page_text(&document, *page_id, &mut text, &mut budget) {
            Ok(()) => readable_pages += 1,
            Err(PageError::OverBudget) => return Err(ResumeError::TooComplex),
            Err(PageError::Unreadable) => {}
        }
        text.push_str("\n\n");
        if text.len() > MAX_RAW_TEXT_BYTES {
            return Err(ResumeError::TooMuchText);
        }
    }
    if readable_pages == 0 {
        return Err(ResumeError::Corrupt);
    }
    Ok(text)
}

/// Appends the text shown on one page. The vertical position of the text is tracked through
/// `BT`, `Tm`, `Td`/`TD`, `TL` and `T*` (ignoring `cm` transforms), so a show on another line
/// starts a new line and a show after a move on the same line gets a space; a wide negative
/// kerning inside `TJ` is a word gap. (lopdf's own extractor glues lines and words together.)
fn page_text(
    document: &Document,
    page_id: ObjectId,
    out: &mut String,
    budget: &mut ContentBudget,
) -> Result<(), PageError> {
    let encodings: BTreeMap<Vec<u8>, Encoding<'_>> = document
        .get_page_fonts(page_id)?
        .into_iter()
        .filter_map(|(name, font)| {
            font.get_font_encoding_with_limit(document, MAX_PDF_STREAM_BYTES)
                .ok()
                .map(|encoding| (name, encoding))
        })
        .collect();
    let content = document
        .get_page_content_with_limit(page_id, MAX_PDF_PAGE_CONTENT_BYTES.min(budget.bytes))?;
    budget.bytes = budget
        .bytes
        .checked_sub(content.len())
        .ok_or(PageError::OverBudget)?;
    let content = Content::decode(&content)?;
    budget.operations = budget
        .operations
        .checked_sub(content.operations.len())
        .ok_or(PageError::OverBudget)?;
    let mut encoding = None;
    let mut position = TextPosition::default();
    for operation in &content.operations {
        if out.len() > MAX_RAW_TEXT_BYTES {
            break;
        }
        let operands = &operation.operands;
        let number = |index: usize| operands.get(index).and_then(number_of);
        match operation.operator.as_str() {
            "Tf" => {
                encoding = operands
                    .first()
                    .and_then(|name| name.as_name().ok())
                    .and_then(|name| encodings.get(name));
            }
            "BT" => position.begin(),
            "Tm" => position.set_matrix(number(3), number(5)),
            "Td" => position.move_line(number(1), false),
            "TD" => position.move_line(number(1), true),
            "TL" => position.leading = number(0).unwrap_or(0.0),
            "T*" => position.next_line(),
            "Tj" => {
                position.separate(out);
                show_strings(out, encoding, operands);
            }
            "TJ" => {
                position.separate(out);
                for item in operands.iter().filter_map(|o| o.as_array().ok()).flatten() {
                    if let Object::String(..) = item {
                        show_strings(out, encoding, std::slice::from_ref(item));
                    } else if number_of(item).is_some_and(|gap| gap < -180.0) {
                        // Kerning is in thousandths of an em.
                        push_space(out);
                    }
                }
            }
            "'" | "\"" => {
                position.next_line();
                position.separate(out);
                let shown = operands.last().map(std::slice::from_ref).unwrap_or(&[]);
                show_strings(out, encoding, shown);
            }
            _ => {}
        }
    }
    push_newline(out);
    Ok(())
}

/// What is left to spend on the pages still to read.
struct ContentBudget {
    bytes: usize,
    operations: usize,
}

/// Why a page gave no text: unreadable (skipped) or over the document's budget (the whole
/// upload is refused).
enum PageError {
    Unreadable,
    OverBudget,
}

impl From<lopdf::Error> for PageError {
    fn from(error: lopdf::Error) -> Self {
        match error {
            // A content stream that inflates past what is left of the budget: a bomb.
            lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
                PageError::OverBudget
            }
            _ => PageError::Unreadable,
        }
    }
}

/// Where text is being shown, vertically, in unrotated user space.
#[derive(Default)]
struct TextPosition {
    /// The line matrix's vertical scale (`d`) and offset (`f`).
    scale: f32,
    y: f32,
    leading: f32,
    /// Whether the position moved since the last show, and where that show was.
    moved: bool,
    shown_at: Option<f32>,
}

impl TextPosition {
    /// Lines closer than this (in points) are the same line; sub- and superscripts stay on it.
    const SAME_LINE: f32 = 2.5;

    fn begin(&mut self) {
        self.scale = 1.0;
        self.y = 0.0;
        self.moved = true;
    }

    fn set_matrix(&mut self, scale: Option<f32>, y: Option<f32>) {
        self.scale = scale.unwrap_or(1.0);
        self.y = y.unwrap_or(0.0);
        self.moved = true;
    }

    fn move_line(&mut self, dy: Option<f32>, sets_leading: bool) {
        let dy = dy.unwrap_or(0.0);
        if sets_leading {
            self.leading = -dy;
        }
        self.y += dy * self.scale;
        self.moved = true;
    }

    fn next_line(&mut self) {
        self.y -= self.leading * self.scale;
        self.moved = true;
    }

    /// Before showing text: a line break if it is on another line than the last show, a space
    /// if it moved along the same line.
    fn separate(&mut self, out: &mut String) {
        match self.shown_at {
            Some(last) if (last - self.y).abs() > Self::SAME_LINE => push_newline(out),
            Some(_) if self.moved => push_space(out),
            _ => {}
        }
        self.shown_at = Some(self.y);
        self.moved = false;
    }
}

fn number_of(object: &Object) -> Option<f32> {
    match object {
        Object::Integer(value) => Some(*value as f32),
        Object::Real(value) => Some(*value),
        _ => None,
    }
}

fn show_strings(out: &mut String, encoding: Option<&Encoding<'_>>, operands: &[Object]) {
    let Some(encoding) = encoding else { return };
    for operand in operands {
        if let Object::String(bytes, _) = operand
            && let Ok(decoded) = Document::decode_text(encoding, bytes)
        {
            out.push_str(&decoded);
        }
    }
}

fn push_space(out: &mut String) {
    if !out.is_empty() && !out.ends_with([' ', '\n']) {
        out.push(' ');
    }
}

fn push_newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

// ---------------------------------------------------------------------------------------------
// DOCX

/// The text of a DOCX, reading at most `xml_cap` bytes of `word/document.xml`.
pub(super) fn docx_text(
    bytes: &[u8],
    hint: Option<ResumeFormat>,
    xml_cap: u64,
) -> Result<String, ResumeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| ResumeError::Corrupt)?;
    let Some(index) = archive.index_for_name(DOCX_MAIN_PART) else {
        // Some other zip (XLSX, ODT, an archive); it is corrupt only if it claimed to be a DOCX.
        return Err(if hint == Some(ResumeFormat::Docx) {
            ResumeError::Corrupt
        } else {
            ResumeError::UnsupportedType
        });
    };
    // Zip-level encryption (ZipCrypto or AES) is flagged per entry; look before decrypting.
    let encrypted = archive
        .by_index_raw(index)
        .map_err(|_| ResumeError::Corrupt)?
        .encrypted();
    if encrypted {
        return Err(ResumeError::Encrypted);
    }
    let part = archive.by_index(index).map_err(|error| match error {
        zip::result::ZipError::UnsupportedArchive(reason)
            if reason == zip::result::ZipError::PASSWORD_REQUIRED =>
        {
            ResumeError::Encrypted
        }
        _ => ResumeError::Corrupt,
    })?;
    // The declared size may lie; read one byte past the cap to tell "at the cap" from "over".
    let mut xml = Vec::new();
    part.take(xml_cap.saturating_add(1))
        .read_to_end(&mut xml)
        .map_err(|_| ResumeError::Corrupt)?;
    if xml.len() as u64 > xml_cap {
        // Markup past the cap is a zip bomb, whatever text it might hold.
        return Err(ResumeError::TooComplex);
    }
    let xml = std::str::from_utf8(&xml).map_err(|_| ResumeError::Corrupt)?;
    document_xml_text(xml.strip_prefix('\u{feff}').unwrap_or(xml))
}

/// The text of a WordprocessingML body: `w:t` runs, a newline per paragraph `w:p`, a tab for
/// `w:tab` and table cells, line breaks for `w:br`/`w:cr`. Deleted text (`w:delText`) and field
/// instructions (`w:instrText`) are not text the reader sees, so they are skipped.
fn document_xml_text(xml: &str) -> Result<String, ResumeError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut text = String::new();
    let mut in_text_run = false;
    loop {
        let event = reader.read_event().map_err(|_| ResumeError::Corrupt)?;
        match event {
            Event::Start(element) if element.local_name().as_ref() == "t" => in_text_run = true,
            Event::End(element) => match element.local_name().as_ref() {
                "t" => in_text_run = false,
                "p" => text.push('\n'),
                "tc" => text.push('\t'),
                _ => {}
            },
            Event::Empty(element) => match element.local_name().as_ref() {
                "p" | "br" | "cr" => text.push('\n'),
                "tab" => text.push('\t'),
                _ => {}
            },
            Event::Text(content) if in_text_run => {
                text.push_str(&content.xml10_content());
            }
            Event::CData(content) if in_text_run => {
                text.push_str(&content);
            }
            Event::GeneralRef(reference) if in_text_run => {
                if let Some(character) = reference.resolve_char_ref().ok().flatten() {
                    text.push(character);
                } else {
                    let entity = match reference.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    };
                    text.push_str(entity);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if text.len() > MAX_RAW_TEXT_BYTES {
            return Err(ResumeError::TooMuchText);
        }
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// Plain text

fn plain_text(bytes: &[u8], hint: Option<ResumeFormat>) -> Result<String, ResumeError> {
    // Claimed a PDF or DOCX but has neither signature: a damaged or mislabelled file.
    let not_text = if matches!(hint, Some(ResumeFormat::Pdf | ResumeFormat::Docx)) {
        ResumeError::Corrupt
    } else {
        ResumeError::UnsupportedType
    };
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        std::str::from_utf8(rest).map_err(|_| not_text)?.to_owned()
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes).ok_or(not_text)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes).ok_or(not_text)?
    } else {
        std::str::from_utf8(bytes).map_err(|_| not_text)?.to_owned()
    };
    // Rich text is valid ASCII but its markup is not resume text.
    if text.trim_start().starts_with("{\\rtf") || looks_binary(&text) {
        return Err(not_text);
    }
    Ok(text)
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// NUL anywhere, or more than 1 in 100 characters a control character other than the usual
/// whitespace: an executable, an image or some other binary that happens to be valid UTF-8.
fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for character in text.chars() {
        if character == '\0' {
            return true;
        }
        total += 1;
        if character.is_control() && !matches!(character, '\n' | '\r' | '\t' | '\u{c}') {
            control += 1;
        }
    }
    control * 100 > total
}

// ---------------------------------------------------------------------------------------------
// Normalization

/// Invisible format characters dropped from text: zero-width spaces and joiners, direction marks
/// and embeddings, word joiner and friends, the BOM, the soft hyphen.
fn is_invisible(character: char) -> bool {
    matches!(character,
        '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// See [`extract`]: `\n` line ends, no control or invisible characters, single spaces, trimmed
/// lines, at most one blank line in a row, no leading or trailing blank lines.
pub(crate) fn normalize_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_RAW_TEXT_BYTES));
    let mut pending_newlines = 0usize;
    let unified = raw.replace("\r\n", "\n");
    for line in unified.split(['\n', '\r', '\u{c}', '\u{2028}', '\u{2029}', '\u{85}']) {
        let mut cleaned = String::with_capacity(line.len());
        for character in line.chars() {
            if character.is_whitespace() {
                if !cleaned.is_empty() && !cleaned.ends_with(' ') {
                    cleaned.push(' ');
                }
            } else if !character.is_control() && !is_invisible(character) {
                cleaned.push(character);
            }
        }
        let cleaned = cleaned.trim_end();
        if cleaned.is_empty() {
            pending_newlines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if pending_newlines > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(cleaned);
        pending_newlines = 0;
    }
    out
}
