//! The demo sign-in page (`web/demo`, built by `scripts/dev`) at `/` of the local run: the
//! files of its build folder with their content types, and nothing outside that folder.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::Full;

/// The build folder: `OTP_DEMO_DIR` (`Settings::local_demo_dir`), else `web/demo/dist` of
/// this checkout.
pub fn root(configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/demo/dist"), Path::to_path_buf)
}

/// The page talks to the API on its own origin only; the modal's styles are inline.
const PAGE_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Demo not built</title>\
<h1>The demo page is not built</h1><p>The API is served as usual. To get the sign-in page here, install \
Node.js (20.19 or later) with npm and start <code>scripts/dev</code> again: it builds the page when needed \
(or build it yourself: <code>npm --prefix web ci &amp;&amp; npm --prefix web run build:local</code>).</p></html>";

/// The answer to a GET or HEAD of a page path; `None` for the API's paths, other methods
/// and files that do not exist, which the API answers (`404`/`405` in the contract's shape).
pub fn serve<B>(root: &Path, request: &http::Request<B>) -> Option<http::Response<Full<Bytes>>> {
    serve_from(root, request.method(), request.uri().path())
}

fn serve_from(root: &Path, method: &Method, path: &str) -> Option<http::Response<Full<Bytes>>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if path == "/api" || path.starts_with("/api/") || path == "/_dev" || path.starts_with("/_dev/") {
        return None;
    }
    let relative = if path == "/" { "index.html" } else { path.strip_prefix('/')? };
    let segments: Vec<&str> = relative.split('/').collect();
    if !segments.iter().all(|segment| is_plain_name(segment)) {
        return None;
    }
    let Ok(root) = root.canonicalize() else {
        return (relative == "index.html").then(|| page(StatusCode::NOT_FOUND, "text/html; charset=utf-8", NOT_BUILT));
    };
    // Symbolic links inside the folder must not lead out of it either.
    let file = root.join(segments.iter().collect::<PathBuf>()).canonicalize().ok()?;
    if !file.starts_with(&root) || !file.is_file() {
        return None;
    }
    let body = std::fs::read(&file).ok()?;
    let content_type = content_type(&file);
    let mut response = page(StatusCode::OK, content_type, body);
    // Vite's assets carry a content hash in their name; the page itself must be fetched anew.
    let cache = if segments.first() == Some(&"assets") { "public, max-age=31536000, immutable" } else { "no-cache" };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(response)
}

/// Only the names a Vite build writes: letters, digits, `-`, `_` and `.`, never leading
/// with a dot (so no `..`, no hidden files, no percent-escapes or backslashes).
fn is_plain_name(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn page(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// A build folder with an index, an asset, a secret beside the folder and a link out of it.
    struct Fixture {
        base: PathBuf,
        root: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Self {
            let base = std::env::temp_dir().join(format!("otp-demo-test-{name}-{}", std::process::id()));
            let root = base.join("dist");
            std::fs::create_dir_all(root.join("assets")).unwrap();
            std::fs::write(root.join("index.html"), "<!doctype html><title>demo</title>").unwrap();
            std::fs::write(root.join("assets/index-abc123.js"), "console.log(1)").unwrap();
            std::fs::write(root.join("assets/index-abc123.css"), "body{}").unwrap();
            std::fs::write(root.join(".env"), "hidden").unwrap();
            std::fs::write(base.join("secret.txt"), "outside").unwrap();
            #[cfg(unix)]
            std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
            Self { base, root }
        }

        fn get(&self, path: &str) -> Option<http::Response<Full<Bytes>>> {
            serve_from(&self.root, &Method::GET, path)
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    async fn body(response: http::Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn header<'a>(response: &'a http::Response<Full<Bytes>>, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[tokio::test]
    async fn root_is_the_index_page_with_its_content_type() {
        let fixture = Fixture::new("root");
        let response = fixture.get("/").unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert!(header(&response, "content-security-policy").contains("connect-src 'self'"));
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(body(response).await, "<!doctype html><title>demo</title>");
        assert_eq!(fixture.get("/index.html").unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn assets_have_their_types_and_are_cached() {
        let fixture = Fixture::new("assets");
        let script = fixture.get("/assets/index-abc123.js").unwrap();
        assert_eq!(header(&script, "content-type"), "text/javascript; charset=utf-8");
        assert_eq!(header(&script, "cache-control"), "public, max-age=31536000, immutable");
        assert_eq!(body(script).await, "console.log(1)");
        let style = fixture.get("/assets/index-abc123.css").unwrap();
        assert_eq!(header(&style, "content-type"), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("x.png")), "image/png");
        assert_eq!(content_type(Path::new("x.unknown")), "application/octet-stream");
    }

    #[test]
    fn nothing_outside_the_folder_is_served() {
        let fixture = Fixture::new("traversal");
        for path in [
            "/../secret.txt",
            "/assets/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/..%2fsecret.txt",
            "/assets/..\\..\\secret.txt",
            "//etc/passwd",
            "/.env",
            "/assets/",
            "/link.txt",
            "/missing.js",
            "/assets",
        ] {
            assert!(fixture.get(path).is_none(), "{path} must not be served");
        }
    }

    #[test]
    fn the_api_paths_and_other_methods_are_left_to_the_api() {
        let fixture = Fixture::new("api");
        for path in ["/api/send-otp", "/api/verify-otp", "/api", "/_dev/outbox", "/_dev"] {
            assert!(fixture.get(path).is_none(), "{path}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert!(serve_from(&fixture.root, &method, "/").is_none(), "{method}");
        }
        assert_eq!(serve_from(&fixture.root, &Method::HEAD, "/").unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn without_a_build_the_root_says_how_to_get_the_page() {
        let missing = std::env::temp_dir().join(format!("otp-demo-test-missing-{}", std::process::id()));
        let response = serve_from(&missing, &Method::GET, "/").unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
        assert!(body(response).await.contains("install Node.js"));
        assert!(serve_from(&missing, &Method::GET, "/assets/index.js").is_none());
    }
}
