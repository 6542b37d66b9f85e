//! `GET /api/openapi.json`: the API's reference, an OpenAPI 3 document kept by hand beside the
//! code (cheaper to build than generating it, and checked by tests against the router).

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Serves [`DOCUMENT`].
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::DOCUMENT;
    use crate::auth::PUBLIC_PATHS;

    #[test]
    fn public_paths_are_exactly_those_documented_without_security() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut public = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let security = op.get("security").unwrap_or(&doc["security"]);
                if security.as_array().is_some_and(|s| s.is_empty()) {
                    public.push(path.clone());
                }
                assert!(
                    op.get("responses").is_some(),
                    "{method} {path} has no responses"
                );
                if !PUBLIC_PATHS.contains(&path.as_str()) {
                    assert!(
                        op["responses"].get("401").is_some(),
                        "{method} {path} does not document its 401"
                    );
                }
            }
        }
        public.sort();
        let mut expected: Vec<String> = PUBLIC_PATHS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(public, expected);
    }
}
