//! `report.html`: the report's tables and the plots in one self-contained page (no
//! server, no network: the plots are inlined SVG, the styles are in the page).

use std::fmt::Write as _;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Inline markdown of the report's own text: `code`, **bold**, [text](link).
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`')
            && let Some(end) = r.find('`')
        {
            let _ = write!(out, "<code>{}</code>", escape(&r[..end]));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix("**")
            && let Some(end) = r.find("**")
        {
            let _ = write!(out, "<strong>{}</strong>", escape(&r[..end]));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[')
            && let Some(mid) = r.find("](")
            && let Some(end) = r[mid + 2..].find(')')
        {
            let (text, href) = (&r[..mid], &r[mid + 2..mid + 2 + end]);
            let _ = write!(out, "<a href=\"{}\">{}</a>", escape(href), escape(text));
            rest = &r[mid + 3 + end..];
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push_str(&escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_start_matches('|').trim_end_matches('|').split('|').map(str::trim).collect()
}

/// The page: `markdown` (the report.md danas writes: headings, paragraphs, tables)
/// rendered to HTML, then each `(title, svg)` plot inlined.
pub fn page(markdown: &str, plots: &[(String, String)]) -> String {
    let mut body = String::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(h) = l.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", inline(h));
        } else if let Some(h) = l.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", inline(h));
        } else if l.trim_start().starts_with('|') {
            body.push_str("<table>\n");
            let head = cells(l);
            let right: Vec<bool> =
                lines.get(i + 1).map(|sep| cells(sep).iter().map(|c| c.ends_with(':')).collect()).unwrap_or_default();
            body.push_str("<thead><tr>");
            for c in &head {
                let _ = write!(body, "<th>{}</th>", inline(c));
            }
            body.push_str("</tr></thead>\n<tbody>\n");
            i += 2;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                body.push_str("<tr>");
                for (k, c) in cells(lines[i]).iter().enumerate() {
                    let class = if right.get(k).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
                    let _ = write!(body, "<td{class}>{}</td>", inline(c));
                }
                body.push_str("</tr>\n");
                i += 1;
            }
            body.push_str("</tbody></table>\n");
            continue;
        } else if !l.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", inline(l));
        }
        i += 1;
    }
    if !plots.is_empty() {
        body.push_str("<h2>Plots</h2>\n<div class=\"plots\">\n");
        for (title, svg) in plots {
            // plotters writes a standalone document; keep only the <svg> element.
            let start = svg.find("<svg").unwrap_or(0);
            let _ = writeln!(body, "<figure>{}<figcaption>{}</figcaption></figure>", &svg[start..], escape(title));
        }
        body.push_str("</div>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>danas search report</title>\n\
         <style>\nbody {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}\nth {{ background: #f0f0f0; }}\n\
         td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         tr:nth-child(even) td {{ background: #fafafa; }}\ncode {{ background: #f3f3f3; padding: 0 0.2em; }}\n\
         .plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}\nfigure {{ margin: 0; }}\n\
         figure svg {{ max-width: 100%; height: auto; }}\nfigcaption {{ text-align: center; color: #555; }}\n\
         </style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_headings_tables_links_and_escapes() {
        let md = "# T\n\nSome `code` & **bold**.\n\n| a | b |\n|---|---:|\n| [m](x/model.tflite) | 1.5 |\n";
        let html = page(md, &[("plot".into(), "<?xml?><svg width=\"1\"></svg>".into())]);
        assert!(html.contains("<h1>T</h1>"));
        assert!(html.contains("<code>code</code> &amp; <strong>bold</strong>"));
        assert!(html.contains("<a href=\"x/model.tflite\">m</a>"));
        assert!(html.contains("<td class=\"num\">1.5</td>"));
        assert!(html.contains("<figure><svg width=\"1\"></svg>"));
        assert!(!html.contains("<?xml"));
    }
}
