//! Protects resume text extraction: the format comes from the bytes, each kind of bad upload
//! (wrong type, corrupt, encrypted, empty, oversized, zip bomb) gets its own client error, the
//! text is normalized, and no input — however hostile — makes `extract` panic. Every fixture is
//! built here in memory; nothing is read from or written to disk.

use std::io::{Cursor, Write};

use proptest::prelude::*;

use super::extract::{docx_text, normalize_text};
use super::{ResumeError, ResumeFormat, extract};

// ---------------------------------------------------------------------------------------------
// Fixture builders

/// A PDF with one page showing `lines` in Helvetica, one text line each, with a correct xref.
/// `extra_trailer` is spliced into the trailer and `extra_objects` appended as objects 6, 7, ….
fn pdf_with(lines: &[&str], extra_trailer: &str, extra_objects: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for (index, line) in lines.iter().enumerate() {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        if index == 0 {
            content.push_str(&format!("({escaped}) Tj\n"));
        } else {
            content.push_str(&format!("0 -14 Td ({escaped}) Tj\n"));
        }
    }
    content.push_str("ET\n");
    pdf_with_content(&content, extra_trailer, extra_objects)
}

/// A one-page PDF whose page content stream is `content`, with Helvetica as font `F1`.
fn pdf_with_content(content: &str, extra_trailer: &str, extra_objects: &[&str]) -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
    ];
    objects.extend(extra_objects.iter().map(|object| (*object).to_owned()));
    let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref_at = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R {extra_trailer} >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn resume_pdf() -> Vec<u8> {
    pdf_with(
        &[
            "Jane Doe",
            "Senior Backend Engineer",
            "8 years building services in Rust and Go (AWS, PostgreSQL).",
        ],
        "",
        &[],
    )
}

/// A PDF whose trailer names a Standard security handler (RC4, revision 2) with made-up keys.
fn encrypted_pdf() -> Vec<u8> {
    let key = "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF";
    let handler = format!("<< /Filter /Standard /V 1 /R 2 /O <{key}> /U <{key}> /P -44 >>");
    pdf_with(
        &["Secret resume"],
        "/Encrypt 6 0 R /ID [<00112233445566778899AABBCCDDEEFF> <00112233445566778899AABBCCDDEEFF>]",
        &[&handler],
    )
}

/// A zip holding `entries` (name, content), deflated like Word does.
fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer
            .start_file(*name, options)
            .expect("an in-memory zip accepts a new entry");
        writer
            .write_all(content.as_bytes())
            .expect("writing to an in-memory zip cannot fail");
    }
    writer
        .finish()
        .expect("an in-memory zip finishes")
        .into_inner()
}

fn document_xml(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
         <w:body>{body}</w:body></w:document>"
    )
}

fn docx_with_body(body: &str) -> Vec<u8> {
    zip_of(&[
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>",
        ),
        ("word/document.xml", &document_xml(body)),
    ])
}

fn resume_docx() -> Vec<u8> {
    docx_with_body(
        "<w:p><w:r><w:t>Jane Doe</w:t></w:r></w:p>\
         <w:p><w:r><w:t xml:space=\"preserve\">Senior </w:t></w:r><w:r><w:t>Backend Engineer</w:t></w:r></w:p>\
         <w:p><w:r><w:t>Rust &amp; Go</w:t><w:tab/><w:t>AWS &#8211; PostgreSQL</w:t></w:r>\
         <w:r><w:delText>Deleted words</w:delText><w:instrText>HYPERLINK x</w:instrText></w:r></w:p>\
         <w:tbl><w:tr><w:tc><w:p><w:r><w:t>2019</w:t></w:r></w:p></w:tc>\
         <w:tc><w:p><w:r><w:t>Acme</w:t></w:r></w:p></w:tc></w:tr></w:tbl>",
    )
}

const OLE_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// An OLE2 compound file header followed by a directory naming `stream` (UTF-16LE).
fn ole_file(stream: &str) -> Vec<u8> {
    let mut bytes = OLE_MAGIC.to_vec();
    bytes.resize(512, 0);
    bytes.extend(stream.encode_utf16().flat_map(u16::to_le_bytes));
    bytes.resize(1536, 0);
    bytes
}

// ---------------------------------------------------------------------------------------------
// PDF

#[test]
fn a_pdf_with_text_is_extracted_line_by_line() {
    let extracted = extract(&resume_pdf(), Some("application/pdf"), Some("cv.pdf"))
        .expect("a valid one-page PDF with text extracts");
    assert_eq!(extracted.format, ResumeFormat::Pdf);
    assert_eq!(
        extracted.text,
        "Jane Doe\nSenior Backend Engineer\n8 years building services in Rust and Go (AWS, PostgreSQL)."
    );
}

#[test]
fn pdf_words_placed_separately_on_one_line_are_spaced_and_lines_are_broken() {
    // Word-processor style: one BT block per word, absolute Tm positions, TJ kerning gaps.
    let content = "BT /F1 12 Tf 1 0 0 1 72 720 Tm (Senior) Tj ET\n\
                   BT /F1 12 Tf 1 0 0 1 120 720 Tm (Engineer) Tj ET\n\
                   BT /F1 12 Tf 12 0 0 12 72 700 Tm [(Rust)-250(and)-300(Go)] TJ 0 -1.2 Td (AWS) Tj\n\
                   0.3 Ts 0 0.1 Td (2) Tj ET";
    let extracted = extract(&pdf_with_content(content, "", &[]), None, None)
        .expect("a PDF positioned word by word extracts");
    assert_eq!(extracted.text, "Senior Engineer\nRust and Go\nAWS 2");
}

#[test]
fn a_pdf_is_recognized_by_its_bytes_whatever_it_was_declared_as() {
    let extracted = extract(&resume_pdf(), Some("text/plain"), Some("resume.txt"))
        .expect("the magic bytes decide, not the declared type");
    assert_eq!(extracted.format, ResumeFormat::Pdf);
}

#[test]
fn a_pdf_with_an_encrypt_entry_in_its_trailer_is_rejected_as_encrypted() {
    assert_eq!(
        extract(&encrypted_pdf(), Some("application/pdf"), None),
        Err(ResumeError::Encrypted)
    );
}

#[test]
fn a_truncated_pdf_is_rejected_as_corrupt() {
    let pdf = resume_pdf();
    assert_eq!(
        extract(&pdf[..60], None, Some("cv.pdf")),
        Err(ResumeError::Corrupt)
    );
    assert_eq!(
        extract(b"%PDF-1.7\nthis is not a pdf body at all", None, None),
        Err(ResumeError::Corrupt)
    );
}

#[test]
fn a_pdf_whose_page_shows_no_text_is_empty() {
    assert_eq!(
        extract(&pdf_with(&[], "", &[]), None, None),
        Err(ResumeError::Empty)
    );
}

// ---------------------------------------------------------------------------------------------
// DOCX

#[test]
fn a_docx_yields_paragraphs_as_lines_with_entities_tabs_and_tables() {
    let extracted = extract(&resume_docx(), None, Some("cv.docx")).expect("a valid DOCX extracts");
    assert_eq!(extracted.format, ResumeFormat::Docx);
    assert_eq!(
        extracted.text,
        "Jane Doe\nSenior Backend Engineer\nRust & Go AWS \u{2013} PostgreSQL\n2019\nAcme"
    );
    assert!(
        !extracted.text.contains("Deleted"),
        "deleted revisions are not text"
    );
    assert!(
        !extracted.text.contains("HYPERLINK"),
        "field codes are not text"
    );
}

#[test]
fn a_zip_without_a_word_document_is_unsupported_or_corrupt_if_it_claimed_to_be_docx() {
    let spreadsheet = zip_of(&[("xl/workbook.xml", "<workbook/>")]);
    assert_eq!(
        extract(&spreadsheet, None, Some("cv.xlsx")),
        Err(ResumeError::UnsupportedType)
    );
    assert_eq!(
        extract(&spreadsheet, None, Some("cv.docx")),
        Err(ResumeError::Corrupt)
    );
}

#[test]
fn a_truncated_docx_is_rejected_as_corrupt() {
    let docx = resume_docx();
    assert_eq!(
        extract(&docx[..docx.len() / 2], None, None),
        Err(ResumeError::Corrupt)
    );
}

#[test]
fn a_docx_with_malformed_xml_is_rejected_as_corrupt() {
    let docx = zip_of(&[("word/document.xml", "<w:document><w:body><w:p></w:body>")]);
    assert_eq!(extract(&docx, None, None), Err(ResumeError::Corrupt));
}

#[test]
fn a_docx_whose_document_inflates_past_the_cap_is_refused_without_reading_it_all() {
    // 64 KiB of XML deflates to a few hundred bytes: a small zip bomb against a 4 KiB cap.
    let bomb = docx_with_body(&format!(
        "<w:p><w:r><w:t>{}</w:t></w:r></w:p>",
        "a ".repeat(32 * 1024)
    ));
    assert!(bomb.len() < 4096, "the fixture compresses well");
    assert_eq!(docx_text(&bomb, None, 4096), Err(ResumeError::TooComplex));
    assert!(
        docx_text(&bomb, None, 1024 * 1024).is_ok(),
        "under the cap it reads"
    );
}

#[test]
fn a_docx_whose_entries_are_zip_encrypted_is_rejected_as_encrypted() {
    // Set the "encrypted" general-purpose flag on every local and central directory header.
    let mut docx = resume_docx();
    for (signature, flag_offset) in [(b"PK\x03\x04", 6), (b"PK\x01\x02", 8)] {
        let starts: Vec<usize> = docx
            .windows(4)
            .enumerate()
            .filter(|(_, window)| window == signature)
            .map(|(at, _)| at)
            .collect();
        for at in starts {
            docx[at + flag_offset] |= 1;
        }
    }
    assert_eq!(extract(&docx, None, None), Err(ResumeError::Encrypted));
}

#[test]
fn a_password_protected_docx_in_an_ole_container_is_rejected_as_encrypted() {
    assert_eq!(
        extract(&ole_file("EncryptedPackage"), None, None),
        Err(ResumeError::Encrypted)
    );
    assert_eq!(
        extract(&ole_file("Root Entry"), None, Some("cv.docx")),
        Err(ResumeError::Encrypted),
        "an OLE file uploaded as .docx is what Word writes for a protected document"
    );
}

#[test]
fn a_legacy_word_doc_is_unsupported() {
    assert_eq!(
        extract(
            &ole_file("WordDocument"),
            Some("application/msword"),
            Some("cv.doc")
        ),
        Err(ResumeError::UnsupportedType)
    );
}

// ---------------------------------------------------------------------------------------------
// Plain text and everything else

#[test]
fn utf8_text_with_a_bom_is_extracted_and_normalized() {
    let bytes =
        "\u{feff}Jane Doe\r\n\r\n\r\n\r\nSenior   Engineer\t\u{200b}\r\n  Rust\u{7}, Go  \n\
                 Built payment services used by millions of customers across Europe.\n"
            .as_bytes();
    let extracted =
        extract(bytes, Some("text/plain; charset=utf-8"), None).expect("UTF-8 text extracts");
    assert_eq!(extracted.format, ResumeFormat::Text);
    assert_eq!(
        extracted.text,
        "Jane Doe\n\nSenior Engineer\nRust, Go\nBuilt payment services used by millions of customers across Europe."
    );
}

#[test]
fn utf16_text_with_a_bom_is_decoded() {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(
        "Zoë Müller\nData Scientist"
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );
    let extracted = extract(&bytes, None, Some("cv.txt")).expect("UTF-16LE with a BOM decodes");
    assert_eq!(extracted.text, "Zoë Müller\nData Scientist");
}

#[test]
fn an_image_is_an_unsupported_type() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    assert_eq!(
        extract(png, Some("image/png"), Some("me.png")),
        Err(ResumeError::UnsupportedType)
    );
}

#[test]
fn binary_garbage_is_unsupported_but_corrupt_when_it_claimed_to_be_a_document() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(
        extract(&garbage, None, None),
        Err(ResumeError::UnsupportedType)
    );
    assert_eq!(
        extract(&garbage, Some("application/pdf"), None),
        Err(ResumeError::Corrupt)
    );
    assert_eq!(
        extract(&garbage, None, Some("CV.DOCX")),
        Err(ResumeError::Corrupt)
    );
}

#[test]
fn valid_utf8_with_nul_or_many_control_characters_is_binary() {
    assert_eq!(
        extract(b"Jane\0Doe", None, None),
        Err(ResumeError::UnsupportedType)
    );
    let controls = "\u{1}\u{2}\u{3}\u{4}".repeat(10) + "some text";
    assert_eq!(
        extract(controls.as_bytes(), None, None),
        Err(ResumeError::UnsupportedType)
    );
}

#[test]
fn rich_text_format_is_unsupported_even_though_it_is_ascii() {
    assert_eq!(
        extract(br"{\rtf1\ansi Jane Doe\par}", None, Some("cv.rtf")),
        Err(ResumeError::UnsupportedType)
    );
}

#[test]
fn an_empty_or_blank_file_is_empty() {
    assert_eq!(extract(b"", None, None), Err(ResumeError::Empty));
    assert_eq!(
        extract(b" \n\t\r\n \xE2\x80\x8B", None, None),
        Err(ResumeError::Empty)
    );
}

#[test]
fn text_over_the_character_cap_is_too_much() {
    let long = "word ".repeat(super::MAX_TEXT_CHARS / 5 + 1) + "end";
    assert_eq!(
        extract(long.as_bytes(), None, None),
        Err(ResumeError::TooMuchText)
    );
    let fits = "word ".repeat(1000);
    assert!(extract(fits.as_bytes(), None, None).is_ok());
}

#[test]
fn normalization_keeps_one_blank_line_between_paragraphs_and_drops_invisible_characters() {
    assert_eq!(
        normalize_text("  a\u{a0}\u{a0}b \r\rc\u{c}\u{2028}\n\n\nd\u{200e}\u{feff}e\u{ad}  "),
        "a b\n\nc\n\nde"
    );
}

#[test]
fn error_codes_are_distinct_and_messages_are_generic() {
    let all = [
        ResumeError::UnsupportedType,
        ResumeError::Corrupt,
        ResumeError::Encrypted,
        ResumeError::Empty,
        ResumeError::TooMuchText,
        ResumeError::TooComplex,
    ];
    let codes: std::collections::HashSet<&str> = all.iter().map(ResumeError::code).collect();
    assert_eq!(codes.len(), all.len());
    assert_eq!(ResumeError::TooMuchText.code(), "resume_too_long");
    assert_eq!(ResumeError::TooComplex.code(), "resume_too_complex");
    for error in all {
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn formats_serialize_as_lowercase_names() {
    for format in [ResumeFormat::Pdf, ResumeFormat::Docx, ResumeFormat::Text] {
        let json = serde_json::to_string(&format).expect("a unit enum serializes");
        assert_eq!(json, format!("\"{}\"", format.as_str()));
        let back: ResumeFormat = serde_json::from_str(&json).expect("and deserializes");
        assert_eq!(back, format);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input never panics

/// Overwrites bytes of a valid fixture at the given positions.
fn mutated(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    for (position, value) in edits {
        let len = bytes.len();
        bytes[position % len] = *value;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn extract_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = extract(&bytes, None, None);
    }

    #[test]
    fn extract_never_panics_on_bytes_after_a_pdf_header(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let bytes = [b"%PDF-1.4\n".as_slice(), &tail].concat();
        let _ = extract(&bytes, Some("application/pdf"), None);
    }

    #[test]
    fn extract_never_panics_on_bytes_after_a_zip_header(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let bytes = [b"PK\x03\x04".as_slice(), &tail].concat();
        let _ = extract(&bytes, None, Some("cv.docx"));
    }

    #[test]
    fn extract_never_panics_on_a_damaged_pdf(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let _ = extract(&mutated(resume_pdf(), &edits), None, None);
    }

    #[test]
    fn extract_never_panics_on_a_damaged_docx(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let _ = extract(&mutated(resume_docx(), &edits), None, None);
    }

    #[test]
    fn extracted_text_is_always_normalized(text in "\\PC{0,300}") {
        if let Ok(extracted) = extract(text.as_bytes(), None, None) {
            prop_assert_eq!(normalize_text(&extracted.text), extracted.text.clone());
            prop_assert!(!extracted.text.chars().any(|c| c.is_control() && c != '\n'));
        }
    }
}
