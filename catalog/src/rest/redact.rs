//! Messages of HTTP errors without the URL reqwest puts in them: a URL may
//! carry a signed query, and the caller names the endpoint itself.

/// The error and its causes on one line, without the request's URL.
pub(crate) fn without_url(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message.replace(" ()", "").replace(" for url", "")
}
