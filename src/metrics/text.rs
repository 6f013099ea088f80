//! prometheus-client writes OpenMetrics. Prometheus asks for that, but curl, promtool and
//! older scrapers expect the classic text format (0.0.4): this converts one to the other.
//!
//! The differences that matter for what we write: a counter's HELP and TYPE name the
//! sample (`x_total`, not `x`); there is no `# UNIT` and no `# EOF`; `info` is a gauge.

use std::fmt::Write;

pub fn openmetrics_to_text(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 4096);
    let mut help: Option<&str> = None;
    let mut rest = input;
    while !rest.is_empty() {
        // Samples are the same in both formats (we write no exemplars and no `_created`
        // series): copy each run of them whole, up to the next comment line.
        if !rest.starts_with('#') {
            let end = rest.find("\n#").map_or(rest.len(), |i| i + 1);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = tail;
        if let Some(text) = line.strip_prefix("# HELP ") {
            help = Some(text);
        } else if let Some(text) = line.strip_prefix("# TYPE ") {
            let (name, kind) = text.rsplit_once(' ').unwrap_or((text, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                _ => (name.to_owned(), "untyped"),
            };
            if let Some(text) = help.take() {
                let text = text.split_once(' ').map_or("", |(_, t)| t);
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        }
        // `# UNIT`, `# EOF` and other comments have no place in the text format.
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_info_units_and_eof_are_converted() {
        let om = "# HELP a_seconds Time.\n# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n\
                  a_seconds{x=\"1\"} 0.5\n# HELP b Things.\n# TYPE b counter\nb_total 3\n\
                  # HELP c Build.\n# TYPE c info\nc_info{v=\"1\"} 1\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP a_seconds Time.\n# TYPE a_seconds gauge\na_seconds{x=\"1\"} 0.5\n\
             # HELP b_total Things.\n# TYPE b_total counter\nb_total 3\n\
             # HELP c_info Build.\n# TYPE c_info gauge\nc_info{v=\"1\"} 1\n"
        );
    }
}
