//! The console's HTML: escaping, the page frame (navigation, one inline style sheet, no
//! script or resource from anywhere), tables and forms.

use std::fmt::Write as _;

/// Text made safe inside HTML elements and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A path segment or query value percent-encoded (run ids and table names are plain, keys
/// may hold anything).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// The sections of the navigation bar.
const SECTIONS: [(&str, &str); 4] =
    [("/", "Executions"), ("/quality", "Quality"), ("/warehouse", "Warehouse"), ("/check", "Check a file")];

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
nav{background:#232f3e;padding:0 1.5rem;display:flex;gap:1.5rem;align-items:center}
nav a{color:#d5dbe3;text-decoration:none;padding:.8rem 0;display:inline-block}
nav a.here{color:#fff;border-bottom:3px solid #ff9900}
nav .brand{color:#ff9900;font-weight:600}
main{padding:1rem 1.5rem;max-width:80rem}
table{border-collapse:collapse;background:#fff;margin:.5rem 0 1rem}
th,td{border:1px solid #d5dbe3;padding:.3rem .6rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#eef1f4}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{padding:.1rem .45rem;border-radius:.6rem;font-size:.8rem;font-weight:600;color:#fff;background:#687078}
.SUCCEEDED{background:#1d8102}.FAILED{background:#d13212}.RUNNING{background:#0073bb}
.ABORTED{background:#b7410e}.ABANDONED{background:#545b64}.SUCCEEDED_WITH_WARNINGS{background:#8d6605}
main a.here{font-weight:700;color:#1d2330}
.panel{background:#fff;border:1px solid #d5dbe3;padding:.8rem 1rem;margin:.8rem 0}
.failure{border-left:4px solid #d13212}
.notice{border-left:4px solid #ff9900}
pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem;margin:.3rem 0}
form.inline{display:inline}
button{padding:.35rem .9rem;margin-right:.4rem;cursor:pointer}
button.primary{background:#ff9900;border:1px solid #ec7211;font-weight:600}
svg text{font-family:system-ui,sans-serif}
";

/// A whole page: `here` is the navigation section it belongs to; `refresh` reloads it every
/// two seconds (while executions run).
pub fn page(title: &str, here: &str, body: &str, refresh: bool) -> String {
    let mut out = String::with_capacity(body.len() + 3000);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if refresh {
        out.push_str("<meta http-equiv=\"refresh\" content=\"2\">");
    }
    let _ = write!(out, "<title>{} · Lakestar</title><style>{STYLE}</style></head><body><nav>", escape(title));
    out.push_str("<span class=\"brand\">Lakestar</span>");
    for (href, name) in SECTIONS {
        let class = if href == here { " class=\"here\"" } else { "" };
        let _ = write!(out, "<a href=\"{href}\"{class}>{name}</a>");
    }
    let _ = writeln!(out, "</nav><main><h1>{}</h1>{body}</main></body></html>", escape(title));
    out
}

/// A status badge.
pub fn badge(status: &str) -> String {
    let class = status.split_whitespace().next().unwrap_or("");
    format!("<span class=\"badge {}\" data-status=\"{}\">{}</span>", escape(class), escape(status), escape(status))
}

/// A table of already-escaped cells; a cell starting with `\u{1}` is numeric (right-aligned).
pub fn table(id: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", escape(id));
    for header in headers {
        let _ = write!(out, "<th>{}</th>", escape(header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            match cell.strip_prefix('\u{1}') {
                Some(number) => {
                    let _ = write!(out, "<td class=\"n\">{number}</td>");
                }
                None => {
                    let _ = write!(out, "<td>{cell}</td>");
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A numeric cell.
pub fn number(value: impl std::fmt::Display) -> String {
    format!("\u{1}{value}")
}

/// A button posting to `action` (a form of its own, so it works without script).
pub fn action(action: &str, label: &str, id: &str, primary: bool) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\"><button id=\"{}\"{}>{}</button></form>",
        escape(action),
        escape(id),
        if primary { " class=\"primary\"" } else { "" },
        escape(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_values_encoded() {
        assert_eq!(
            escape("<a href=\"x\">O'Neil & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
        assert_eq!(encode("C 10/ü"), "C%2010%2F%C3%BC");
    }

    #[test]
    fn a_page_loads_nothing_from_elsewhere() {
        let page = page("Runs", "/", "<p>x</p>", true);
        assert!(page.contains("http-equiv=\"refresh\""));
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script"));
        assert!(page.contains("<a href=\"/\" class=\"here\">Executions</a>"));
    }
}
