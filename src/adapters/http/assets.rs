//! The web client's files, addressed by content so browsers may keep them for a year.
//!
//! Every file of `static/` gets a version: a hash of its bytes and, for a JavaScript module,
//! of every module it imports directly or not (an import's URL is part of the importer's text,
//! so a change anywhere below must change the importer's URL too; hashing the whole import
//! closure stays right when modules import each other in a cycle). `index.html` and the
//! modules are served rewritten so that each reference to another file names its version,
//! `/js/app.js?v=3f2a...`. A request carrying the current version is answered with
//! `Cache-Control: public, max-age=31536000, immutable`; anything else (`index.html`, a file
//! asked for without or with an old version) with `no-cache` and an `ETag`, so that a
//! revalidation costs a 304.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::Arc;

use rust_embed::RustEmbed;
use salvo::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;

/// The web client, compiled into the binary (read from disk in debug builds, so editing
/// `static/` and reloading works during development).
#[derive(RustEmbed)]
#[folder = "static/"]
struct Files;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
const INDEX: &str = "index.html";

/// One file as it is served.
struct Asset {
    bytes: Vec<u8>,
    content_type: &'static str,
    version: String,
}

/// Every file of the client, rewritten, by path (`js/app.js`).
struct Table(HashMap<String, Asset>);

impl Table {
    fn build() -> Self {
        let raw: HashMap<String, (Vec<u8>, [u8; 32])> = Files::iter()
            .filter_map(|path| {
                let file = Files::get(&path)?;
                let hash = file.metadata.sha256_hash();
                Some((path.into_owned(), (file.data.into_owned(), hash)))
            })
            .collect();
        let imports: HashMap<&str, Vec<Import>> = raw
            .iter()
            .filter(|(path, _)| path.ends_with(".js"))
            .map(|(path, (bytes, _))| {
                let text = String::from_utf8_lossy(bytes);
                let found = module_imports(&text)
                    .into_iter()
                    .filter_map(|(range, spec)| {
                        let target = resolve(path, &spec)?;
                        raw.contains_key(&target)
                            .then_some(Import { range, target })
                    })
                    .collect();
                (path.as_str(), found)
            })
            .collect();
        let version = |path: &str| -> String {
            // The file and everything it imports, directly or not.
            let mut closure = BTreeSet::from([path.to_owned()]);
            let mut todo = vec![path.to_owned()];
            while let Some(p) = todo.pop() {
                for import in imports.get(p.as_str()).into_iter().flatten() {
                    if closure.insert(import.target.clone()) {
                        todo.push(import.target.clone());
                    }
                }
            }
            let mut hasher = DefaultHasher::new();
            for p in &closure {
                p.hash(&mut hasher);
                raw[p].1.hash(&mut hasher);
            }
            format!("{:016x}", hasher.finish())
        };
        let versions: HashMap<String, String> =
            raw.keys().map(|p| (p.clone(), version(p))).collect();
        let mut files: HashMap<String, Asset> = raw
            .iter()
            .map(|(path, (bytes, _))| {
                let bytes = match imports.get(path.as_str()) {
                    Some(found) => rewrite_imports(bytes, found, &versions),
                    None => bytes.clone(),
                };
                let asset = Asset {
                    bytes,
                    content_type: content_type(path),
                    version: versions[path].clone(),
                };
                (path.clone(), asset)
            })
            .collect();
        if let Some(index) = files.get_mut(INDEX) {
            let html = String::from_utf8_lossy(&index.bytes);
            index.bytes = rewrite_html(&html, &versions).into_bytes();
            let mut hasher = DefaultHasher::new();
            index.bytes.hash(&mut hasher);
            index.version = format!("{:016x}", hasher.finish());
        }
        Self(files)
    }

    /// The file at `path`, its URL with the version (`/js/app.js?v=...`) included.
    #[cfg(test)]
    fn url_of(&self, path: &str) -> Option<String> {
        self.0.get(path).map(|a| format!("/{path}?v={}", a.version))
    }
}

/// The table, built once (in debug builds at each request, so edits to `static/` show).
fn table() -> Arc<Table> {
    #[cfg(debug_assertions)]
    {
        Arc::new(Table::build())
    }
    #[cfg(not(debug_assertions))]
    {
        static TABLE: std::sync::OnceLock<Arc<Table>> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| Arc::new(Table::build())).clone()
    }
}

/// An import of another file of the client: where its specifier is in the module's text, and
/// the path it names.
struct Import {
    range: std::ops::Range<usize>,
    target: String,
}

/// The relative specifiers of a module's static and dynamic imports (`from './x.js'`,
/// `import './x.js'`, `import('./x.js')`), with where each one's text is.
fn module_imports(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut found = Vec::new();
    for keyword in ["from", "import"] {
        let mut at = 0;
        while let Some(i) = text[at..].find(keyword) {
            let start = at + i;
            at = start + keyword.len();
            let before_ok = text[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.'));
            if !before_ok {
                continue;
            }
            let rest = text[at..].trim_start_matches([' ', '(']);
            let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            let open = text.len() - rest.len() + 1;
            let Some(len) = text[open..].find(quote) else {
                continue;
            };
            let spec = &text[open..open + len];
            if spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/') {
                found.push((open..open + len, spec.to_owned()));
            }
        }
    }
    found.sort_by_key(|(range, _)| range.start);
    found.dedup_by_key(|(range, _)| range.start);
    found
}

/// The path of the file `spec` names, imported from the module at `from`.
fn resolve(from: &str, spec: &str) -> Option<String> {
    if let Some(absolute) = spec.strip_prefix('/') {
        return Some(absolute.to_owned());
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for segment in spec.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// A module with each import's specifier followed by `?v=` and the version of what it names.
fn rewrite_imports(bytes: &[u8], found: &[Import], versions: &HashMap<String, String>) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + found.len() * 20);
    let mut done = 0;
    for import in found {
        out.push_str(&text[done..import.range.end]);
        out.push_str("?v=");
        out.push_str(&versions[&import.target]);
        done = import.range.end;
    }
    out.push_str(&text[done..]);
    out.into_bytes()
}

/// `index.html` with every `href="/file"` and `src="/file"` naming a file of the client
/// followed by `?v=` and its version.
fn rewrite_html(html: &str, versions: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(html.len() + 1024);
    let mut rest = html;
    loop {
        let next = ["href=\"/", "src=\"/"]
            .iter()
            .filter_map(|attr| rest.find(attr).map(|i| (i, attr.len())))
            .min();
        let Some((i, len)) = next else {
            out.push_str(rest);
            return out;
        };
        let value_start = i + len;
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let end = rest.find('"').unwrap_or(rest.len());
        let path = &rest[..end];
        out.push_str(path);
        if let Some(version) = versions.get(path) {
            out.push_str("?v=");
            out.push_str(version);
        }
        rest = &rest[end..];
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The file a path names, `index.html` for a directory.
fn file_of(path: &str) -> String {
    if path.is_empty() || path.ends_with('/') {
        format!("{path}{INDEX}")
    } else {
        path.to_owned()
    }
}

/// Whether the request names a file of the client. The route of the files takes only those, so
/// that an API path does not count `GET` among its methods (in a 405's `Allow`) for them.
pub fn is_asset(req: &Request) -> bool {
    let path = req.uri().path().trim_start_matches('/');
    table().0.contains_key(&file_of(path))
}

/// Serves a file of the client, `index.html` for `/`.
#[handler]
pub async fn serve(req: &mut Request, res: &mut Response) {
    let path = file_of(&req.param::<String>("path").unwrap_or_default());
    let table = table();
    let Some(asset) = table.0.get(&path) else {
        res.status_code(StatusCode::NOT_FOUND);
        return;
    };
    let current = path != INDEX && req.query::<String>("v").as_deref() == Some(&asset.version);
    let etag = format!("\"{}\"", asset.version);
    let headers = res.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if current { IMMUTABLE } else { REVALIDATE }),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    let fresh = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        res.status_code(StatusCode::NOT_MODIFIED);
        return;
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    res.write_body(asset.bytes.clone()).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_found_with_their_specifiers() {
        let js = "import { a } from './a.js';\nimport * as B from \"../b.js\";\n\
                  import './side.js';\nconst c = await import('./c.js');\n\
                  const from = 1; // imported from './not-an-import.js' in a comment too\n\
                  import x from 'bare';";
        let specs: Vec<String> = module_imports(js).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            specs,
            [
                "./a.js",
                "../b.js",
                "./side.js",
                "./c.js",
                "./not-an-import.js"
            ]
        );
    }

    #[test]
    fn specifiers_resolve_against_the_importing_module() {
        assert_eq!(resolve("js/app.js", "./store.js").unwrap(), "js/store.js");
        assert_eq!(
            resolve("js/views/auth.js", "../dom.js").unwrap(),
            "js/dom.js"
        );
        assert_eq!(
            resolve("js/actions/chats.js", "./typing.js").unwrap(),
            "js/actions/typing.js"
        );
        assert_eq!(resolve("js/a.js", "/app.css").unwrap(), "app.css");
        assert_eq!(resolve("a.js", "../../x.js"), None);
    }

    #[test]
    fn every_reference_in_the_client_names_a_version() {
        let table = Table::build();
        let index = String::from_utf8(table.0[INDEX].bytes.clone()).unwrap();
        for path in ["app.css", "favicon.svg", "js/app.js", "js/views/auth.js"] {
            let url = table.url_of(path).unwrap();
            assert!(index.contains(&format!("\"{url}\"")), "{url} in index.html");
        }
        let app = String::from_utf8(table.0["js/app.js"].bytes.clone()).unwrap();
        let store = table.0["js/store.js"].version.clone();
        assert!(
            app.contains(&format!("from './store.js?v={store}'")),
            "app.js imports store.js by version"
        );
        for asset in table
            .0
            .values()
            .filter(|a| a.content_type.starts_with("text/javascript"))
        {
            let text = String::from_utf8_lossy(&asset.bytes);
            for (_, spec) in module_imports(&text) {
                assert!(spec.contains("?v="), "unversioned import {spec}");
            }
        }
    }
}
