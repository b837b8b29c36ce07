//! Text put into markup written by hand (the console's SVG charts and marked payloads, the
//! integration plan document), where askama's own escaping does not reach.

/// `text` with `&`, `<`, `>`, `"` and `'` as entities (safe in text and in attribute values),
/// appended to `out`. Control characters XML 1.0 forbids are left out, so the SVG stays
/// well-formed (JSON text holds none raw).
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

/// [`escape_into`] a new string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_forbidden_characters() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape("a\u{1}b\tc\n"), "ab\tc\n", "characters XML forbids are dropped");
    }
}
