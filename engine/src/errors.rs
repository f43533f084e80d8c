//! Errors as people read them: one line, the whole cause chain, nothing
//! said twice, no XML, no password of an address.

/// `outer: cause: root cause`, skipping causes whose text an outer message
/// already contains (many libraries print their source inline), dropping
/// iceberg's `Kind => ` prefixes and condensing S3 XML error bodies. A
/// library's cause may quote an address as it was given; its password is
/// hidden here too.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = tidy(&cause.to_string());
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    medallion_catalog::redacted_uri(&parts.join(": "))
}

fn tidy(message: &str) -> String {
    // DataFusion prints a context above its cause, `context\ncaused by\ncause`.
    let mut text = condense_xml(message)
        .replace("\ncaused by\n", ": ")
        .replace('\n', " ");
    // iceberg::Error prints `Unexpected => message`.
    while let Some(arrow) = text.find(" => ") {
        let start = text[..arrow]
            .rfind(|c: char| !c.is_ascii_alphabetic())
            .map_or(0, |i| i + 1);
        let kind = &text[start..arrow];
        if kind.is_empty() || !kind.starts_with(|c: char| c.is_ascii_uppercase()) {
            break;
        }
        text.replace_range(start..arrow + 4, "");
    }
    text.trim().to_string()
}

/// `...: <?xml ...><Error><Code>X</Code><Message>Y</Message>...` becomes `...: X: Y`.
fn condense_xml(message: &str) -> String {
    let Some(start) = message.find("<?xml").or_else(|| message.find("<Error>")) else {
        return message.to_string();
    };
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let from = message[start..].find(&open)? + start + open.len();
        let to = message[from..].find(&close)? + from;
        Some(message[from..to].to_string())
    };
    let end = message[start..]
        .find("</Error>")
        .map_or(message.len(), |i| start + i + "</Error>".len());
    let summary = [tag("Code"), tag("Message")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    format!(
        "{}{}{}",
        message[..start].trim_end(),
        if summary.is_empty() {
            String::new()
        } else {
            format!(" {summary}")
        },
        &message[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_causes_and_xml_are_folded() {
        let root = anyhow::anyhow!(
            "Error performing PUT http://s3/raw/a in 1ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message><Key>a</Key></Error>"
        );
        let error = root.context("cannot write s3://raw/a");
        let line = one_line(&error);
        assert_eq!(
            line,
            "cannot write s3://raw/a: Error performing PUT http://s3/raw/a in 1ms - Server returned non-2xx status code: 403 Forbidden: SignatureDoesNotMatch: The signature does not match."
        );
    }

    #[test]
    fn iceberg_kind_prefixes_are_dropped() {
        let error =
            anyhow::anyhow!("Unexpected => the catalog refused").context("cannot list namespaces");
        assert_eq!(
            one_line(&error),
            "cannot list namespaces: the catalog refused"
        );
    }
}
