//! The web page: `GET /` and its static files under `/static/`, embedded in the binary.
//!
//! Plain HTML, CSS and JavaScript modules from `api/static/` (no build step, nothing from other
//! origins). Every response carries a strict Content-Security-Policy (scripts only from files of
//! this origin, never inline), `nosniff`, no referrer and no framing. Files are revalidated on
//! every use (`Cache-Control: no-cache` plus a content-hash `ETag`), so a new server version is
//! picked up at once while unchanged files cost a `304`.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The page's policy: everything from this origin only, no inline script or style, no plugins,
/// no `<base>` rewriting, forms post only here, and no other site may frame the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; media-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The microphone is for the live interview (same origin only); nothing else is needed.
const PERMISSIONS_POLICY: &str = "microphone=(self), camera=(), geolocation=(), payment=(), usb=()";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../static/", $name)),
        }
    };
}

/// Every file the page uses; `index.html` is served at `/`, the others at `/static/{name}`.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("auth.js", "text/javascript; charset=utf-8"),
    asset!("policy.js", "text/javascript; charset=utf-8"),
    asset!("profile.js", "text/javascript; charset=utf-8"),
    asset!("settings.js", "text/javascript; charset=utf-8"),
    asset!("interview.js", "text/javascript; charset=utf-8"),
    asset!("feedback.js", "text/javascript; charset=utf-8"),
];

/// Strong validators, one per asset, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                format!("\"{}\"", hex::encode(&digest[..12]))
            })
            .collect()
    })
}

/// The headers every page response carries, whatever its status.
fn with_page_headers(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(("permissions-policy", PERMISSIONS_POLICY))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
        .insert_header(("cross-origin-resource-policy", "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    builder
}

fn serve(request: &HttpRequest, index: usize) -> HttpResponse {
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let matches = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| candidate == etag || candidate == "*");
    let status = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    let mut builder = with_page_headers(status);
    if let Ok(value) = HeaderValue::from_str(etag) {
        builder.insert_header((header::ETAG, value));
    }
    if matches {
        return builder.finish();
    }
    builder
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .body(asset.body)
}

/// `GET /`: the page.
pub async fn index(request: HttpRequest) -> HttpResponse {
    serve(&request, 0)
}

/// `GET /static/{file}`: a file of the page (never `index.html`, which lives at `/`).
pub async fn asset(
    request: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let index = ASSETS
        .iter()
        .skip(1)
        .position(|asset| asset.name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(serve(&request, index + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";

    #[test]
    fn every_asset_has_a_content_type_a_body_and_a_distinct_name() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
            assert!(asset.content_type.contains('/'));
            assert!(ASSETS[..i].iter().all(|other| other.name != asset.name));
        }
        assert!(ASSETS[3..].iter().all(|asset| asset.content_type == JS));
    }

    #[test]
    fn the_page_has_no_inline_script_and_no_other_origin() {
        let html = std::str::from_utf8(ASSETS[0].body).expect("utf-8");
        for (start, _) in html.match_indices("<script") {
            let tag = &html[start..start + html[start..].find('>').expect("closed tag")];
            assert!(tag.contains("src=\"/static/"), "inline script: {tag}");
        }
        assert!(!html.contains("style=\""), "inline style");
        for asset in ASSETS {
            // The SVG namespace is a name, not an address anything is fetched from.
            let text =
                String::from_utf8_lossy(asset.body).replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") || asset.name == "icon.svg");
            assert!(
                !text.contains("https://"),
                "{} refers to another origin",
                asset.name
            );
            assert!(
                !text.contains("localStorage"),
                "{} uses localStorage",
                asset.name
            );
            assert!(
                !text.contains("sessionStorage"),
                "{} uses sessionStorage",
                asset.name
            );
            assert!(
                !text.contains("document.cookie"),
                "{} touches cookies",
                asset.name
            );
        }
    }
}
