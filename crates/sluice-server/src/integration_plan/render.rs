//! Rendering the plan's document as Markdown and as HTML, and choosing between them by
//! `Accept`. Both escape every piece of text taken from a definition.

use std::fmt::Write as _;

use super::{Block, Inline};
#[cfg(test)]
use super::{c, t};
use crate::html::escape as html_escape;

fn md_escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &ch) in chars.iter().enumerate() {
        // An underscore inside a word (`snake_case`) cannot start emphasis: left as it is.
        let inside_word = |k: Option<usize>| k.and_then(|k| chars.get(k)).is_some_and(|c| c.is_alphanumeric());
        match ch {
            '_' if inside_word(i.checked_sub(1)) && inside_word(Some(i + 1)) => out.push(ch),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn md_code(code: &str, in_table: bool) -> String {
    let code = code.replace(['\n', '\r'], " ");
    let code = if in_table { code.replace('|', "\\|") } else { code };
    let mut fence = "`".to_owned();
    while code.contains(&fence) {
        fence.push('`');
    }
    let pad = if code.starts_with('`') || code.ends_with('`') || fence.len() > 1 { " " } else { "" };
    format!("{fence}{pad}{code}{pad}{fence}")
}

fn md_inline(parts: &[Inline], in_table: bool) -> String {
    parts
        .iter()
        .map(|p| match p {
            Inline::Text(s) => md_escape(s),
            Inline::Code(s) => md_code(s, in_table),
            Inline::Strong(s) => format!("**{}**", md_escape(s.trim_end())) + if s.ends_with(' ') { " " } else { "" },
        })
        .collect()
}

/// The document as Markdown (CommonMark with GitHub tables).
pub fn markdown(doc: &[Block]) -> String {
    let mut out = String::new();
    for block in doc {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {}\n", "#".repeat(*level as usize), md_escape(text));
            }
            Block::Paragraph(parts) => {
                let _ = writeln!(out, "{}\n", md_inline(parts, false));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", md_inline(item, false));
                }
                out.push('\n');
            }
            Block::Table(head, rows) => {
                let head: Vec<String> = head.iter().map(|h| md_escape(h)).collect();
                let _ = writeln!(out, "| {} |", head.join(" | "));
                let _ = writeln!(out, "|{}|", vec!["---"; head.len()].join("|"));
                for row in rows {
                    let cells: Vec<String> = row.iter().map(|c| md_inline(c, true)).collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
            Block::CodeBlock(lang, text) => {
                let mut fence = "```".to_owned();
                while text.contains(&fence) {
                    fence.push('`');
                }
                let _ = writeln!(out, "{fence}{lang}\n{text}\n{fence}\n");
            }
        }
    }
    out
}

fn html_inline(parts: &[Inline]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Inline::Text(s) => html_escape(s),
            Inline::Code(s) => format!("<code>{}</code>", html_escape(s)),
            Inline::Strong(s) => format!("<strong>{}</strong>", html_escape(s)),
        })
        .collect()
}

/// The document as a standalone HTML page (no scripts, no external resources).
pub fn html(doc: &[Block]) -> String {
    let title = doc
        .iter()
        .find_map(|b| match b {
            Block::Heading(1, text) => Some(text.as_str()),
            _ => None,
        })
        .unwrap_or("Integration plan");
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\
         body{{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.4}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}}\
         code,pre{{background:#f4f4f4}}pre{{padding:1em;overflow:auto}}</style>\n</head>\n<body>\n",
        html_escape(title)
    );
    for block in doc {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "<h{level}>{}</h{level}>", html_escape(text));
            }
            Block::Paragraph(parts) => {
                let _ = writeln!(out, "<p>{}</p>", html_inline(parts));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", html_inline(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(head, rows) => {
                out.push_str("<table>\n");
                if head.iter().any(|h| !h.is_empty()) {
                    let cells: String = head.iter().map(|h| format!("<th>{}</th>", html_escape(h))).collect();
                    let _ = writeln!(out, "<thead><tr>{cells}</tr></thead>");
                }
                out.push_str("<tbody>\n");
                for row in rows {
                    let cells: String = row.iter().map(|c| format!("<td>{}</td>", html_inline(c))).collect();
                    let _ = writeln!(out, "<tr>{cells}</tr>");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::CodeBlock(lang, text) => {
                let _ = writeln!(out, "<pre><code class=\"language-{lang}\">{}</code></pre>", html_escape(text));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Whether a client's `Accept` header prefers HTML to Markdown (`q` values honoured; a tie,
/// such as `*/*`, gives Markdown).
pub fn prefers_html(accept: &str) -> bool {
    let quality = |wanted: &str| -> f32 {
        let (kind, _) = wanted.split_once('/').unwrap_or((wanted, ""));
        let mut best: (u8, f32) = (0, 0.0);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            let specificity = if media == wanted {
                3
            } else if media == format!("{kind}/*") {
                2
            } else if media == "*/*" {
                1
            } else {
                continue;
            };
            if specificity > best.0 {
                best = (specificity, q);
            }
        }
        best.1
    };
    quality("text/html") > quality("text/markdown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(prefers_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html("text/markdown, text/html;q=0.5"));
        assert!(prefers_html("text/*;q=0.5, text/html"));
        assert!(!prefers_html(""));
    }

    #[test]
    fn text_from_definitions_is_escaped_in_both_renderings() {
        let doc = vec![
            Block::Heading(1, "<script>alert(1)</script>".into()),
            Block::Table(vec!["a".into()], vec![vec![vec![t("x | y"), c("a|b`c")]]]),
        ];
        let md = markdown(&doc);
        assert!(md.contains("\\<script\\>"), "{md}");
        assert!(markdown(&[Block::Heading(2, "a_b _c_".into())]).contains("a_b \\_c\\_"));
        assert!(md.contains("x \\| y"), "{md}");
        assert!(md.contains("`` a\\|b`c ``"), "{md}");
        let html = html(&doc);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }
}
