//! `${VAR}` and `${VAR:-default}` interpolation of the raw config text, done
//! before TOML parsing (as Vector does). `$$` is a literal `$`; a `$` not
//! followed by `{` or `$` is left alone; whole-line comments (`# ...`) are
//! copied untouched so documentation can show the syntax. The environment is passed in, so tests
//! and callers decide where values come from.

/// Substitute variables in `input`. Returns every problem found, each with its
/// line number.
pub fn interpolate(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    for (lineno, line) in input.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let Some(end) = body.find('}') else {
                    errors.push(format!(
                        "line {}: unclosed `${{` in `{}`",
                        lineno + 1,
                        line.trim_end()
                    ));
                    out.push_str(&rest[pos..]);
                    rest = "";
                    break;
                };
                let expr = &body[..end];
                let (name, default) = match expr.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (expr, None),
                };
                if !is_valid_name(name) {
                    errors.push(format!(
                        "line {}: invalid variable name `{name}` in `${{{expr}}}`",
                        lineno + 1
                    ));
                } else {
                    match (env(name), default) {
                        (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                        (Some(v), _) => out.push_str(&v),
                        (None, Some(d)) => out.push_str(d),
                        (None, None) => errors.push(format!(
                            "line {}: environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)",
                            lineno + 1
                        )),
                    }
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("kafka:9092".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("a = \"${HOST}\"", Ok("a = \"kafka:9092\"")),
            ("a = \"${MISSING:-x:1}\"", Ok("a = \"x:1\"")),
            ("a = \"${EMPTY:-fallback}\"", Ok("a = \"fallback\"")),
            ("a = \"${HOST:-unused}\"", Ok("a = \"kafka:9092\"")),
            ("price = \"$$5 and $HOME\"", Ok("price = \"$5 and $HOME\"")),
            ("a = \"${MISSING}\"", Err("`MISSING` is not set")),
            ("a = \"${1BAD}\"", Err("invalid variable name `1BAD`")),
            ("a = \"${HOST\"", Err("unclosed")),
            ("  # use ${VAR} here", Ok("  # use ${VAR} here")),
        ];
        for (input, want) in cases {
            let got = interpolate(input, &env);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{input}"),
                (Err(w), Err(errs)) => assert!(errs[0].contains(w), "{input}: {errs:?}"),
                _ => panic!("{input}: got {got:?}"),
            }
        }
    }

    #[test]
    fn reports_every_missing_variable_with_line() {
        let errs = interpolate("a = \"${A}\"\nb = \"${B}\"\n", &env).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[1].starts_with("line 2:"));
    }
}
