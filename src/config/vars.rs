//! `${VAR}` and `${VAR:-default}` interpolation of the raw config text, done
//! before TOML parsing (as Vector does), so a number can come from the
//! environment too. `$$` is a literal `$`; a `$` not followed by `{` or `$`
//! is left alone; comments are copied untouched so documentation can show
//! the syntax. The environment is passed in, so tests and callers decide
//! where values come from.
//!
//! A value can only ever become one TOML value: it is escaped for the place
//! it lands in. Inside a basic string (`"..."`, `"""..."""`) quotes,
//! backslashes and control characters are escaped; inside a literal string
//! (`'...'`), which has no escapes, a value with a quote or a control
//! character is refused; outside quotes the value must be a number or a
//! boolean. So a secret holding `"` and a newline cannot add keys, and no
//! value is silently changed. No problem message quotes a value.

/// The interpolated text, and the values put into it (for keeping them out
/// of error messages).
#[derive(Debug, Default)]
pub struct Interpolated {
    pub text: String,
    pub values: Vec<String>,
}

/// Where in the TOML text a `${...}` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Bare,
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
    Comment,
}

/// Substitute variables in `input`. Returns every problem found, each with its
/// line number.
pub fn interpolate(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<String>> {
    let mut out = Interpolated {
        text: String::with_capacity(input.len()),
        values: Vec::new(),
    };
    let mut errors = Vec::new();
    let mut ctx = Context::Bare;
    let mut line = 1;
    let mut rest = input;
    while let Some(c) = rest.chars().next() {
        let starts = |p: &str| rest.starts_with(p);
        // Transitions between contexts, copied as they are.
        let token: Option<(usize, Context)> = match ctx {
            Context::Bare if c == '#' => Some((1, Context::Comment)),
            Context::Bare if starts("\"\"\"") => Some((3, Context::MultiBasic)),
            Context::Bare if c == '"' => Some((1, Context::Basic)),
            Context::Bare if starts("'''") => Some((3, Context::MultiLiteral)),
            Context::Bare if c == '\'' => Some((1, Context::Literal)),
            Context::Comment | Context::Basic | Context::Literal if c == '\n' => {
                Some((1, Context::Bare))
            }
            Context::Basic if c == '"' => Some((1, Context::Bare)),
            Context::MultiBasic if starts("\"\"\"") => Some((3, Context::Bare)),
            Context::Literal if c == '\'' => Some((1, Context::Bare)),
            Context::MultiLiteral if starts("'''") => Some((3, Context::Bare)),
            // An escape in a basic string is copied whole (`\"` does not
            // end the string, `\$` is TOML's to refuse).
            Context::Basic | Context::MultiBasic if c == '\\' => {
                let next = rest[1..].chars().next().map_or(0, char::len_utf8);
                Some((1 + next, ctx))
            }
            _ => None,
        };
        if let Some((len, next)) = token {
            line += rest[..len].matches('\n').count();
            out.text.push_str(&rest[..len]);
            rest = &rest[len..];
            ctx = next;
            continue;
        }
        if c != '$' || ctx == Context::Comment {
            if c == '\n' {
                line += 1;
            }
            out.text.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let after = &rest[1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.text.push('$');
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.text.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body
            .find(['}', '\n'])
            .filter(|&e| body.as_bytes()[e] == b'}')
        else {
            errors.push(format!("line {line}: unclosed `${{`"));
            out.text.push_str("${");
            rest = body;
            continue;
        };
        let expr = &body[..end];
        rest = &body[end + 1..];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if !is_valid_name(name) {
            errors.push(format!(
                "line {line}: invalid variable name `{}` in `${{...}}`",
                crate::event::printable(name, 64)
            ));
            continue;
        }
        let value = match (env(name), default) {
            (Some(v), Some(d)) if v.is_empty() => d.to_owned(),
            (Some(v), _) => {
                // Only what came from the environment is kept out of messages:
                // a default is the file's own text.
                out.values.push(v.clone());
                v
            }
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                errors.push(format!(
                    "line {line}: environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                ));
                continue;
            }
        };
        match place(&value, ctx) {
            Ok(text) => out.text.push_str(&text),
            Err(why) => errors.push(format!("line {line}: the value of `${{{name}}}` {why}")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `value` as it must be written where it lands; the error never quotes it.
fn place(value: &str, ctx: Context) -> Result<String, &'static str> {
    match ctx {
        Context::Basic | Context::MultiBasic => {
            let mut s = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\t' => s.push_str("\\t"),
                    '\r' => s.push_str("\\r"),
                    c if c.is_control() => s.push_str(&format!("\\u{:04X}", c as u32)),
                    c => s.push(c),
                }
            }
            Ok(s)
        }
        Context::Literal | Context::MultiLiteral => {
            if value.contains('\'') || value.chars().any(char::is_control) {
                Err("holds a quote or a control character, which a literal string ('...') cannot hold; use a basic string (\"...\")")
            } else {
                Ok(value.to_owned())
            }
        }
        Context::Bare => {
            let v = value.trim();
            let scalar = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .ok()
                .filter(|t| t.len() == 1)
                .and_then(|t| t.get("v").cloned())
                .is_some_and(|x| {
                    matches!(
                        x,
                        toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
                    )
                });
            if scalar && !v.contains(['\n', '#']) {
                Ok(v.to_owned())
            } else {
                Err("stands outside quotes, so it must be a number or a boolean; put the `${...}` in quotes for text")
            }
        }
        Context::Comment => Ok(String::new()),
    }
}

/// `message` with every value that came from the environment replaced by
/// `<redacted>` (secrets reach the config through variables). Values of two
/// characters or fewer are left: they cannot be told from the message's own
/// words, and no secret is that short.
pub fn redact(message: &str, values: &[String]) -> String {
    let mut out = message.to_owned();
    let mut values: Vec<&String> = values.iter().filter(|v| v.trim().len() > 2).collect();
    // Longest first, so a value holding another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in values {
        for form in [format!("{v:?}"), v.to_string(), v.trim().to_owned()] {
            if !form.is_empty() && out.contains(&form) {
                out = out.replace(&form, "<redacted>");
            }
        }
    }
    out
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
            "EVIL" => Some("x\"\n[limits]\nmax_event_bytes = 1\n#".into()),
            "SHARE" => Some("0.25".into()),
            "BACKSLASH" => Some(r"C:\new\table".into()),
            "QUOTE" => Some("it's".into()),
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
            ("a = 1 # or ${VAR}", Ok("a = 1 # or ${VAR}")),
            ("share = ${SHARE}", Ok("share = 0.25")),
            ("share = ${MISSING:-0.5}", Ok("share = 0.5")),
            ("share = ${HOST}", Err("must be a number or a boolean")),
            // Escaped for the string it lands in, never changed.
            ("p = \"${BACKSLASH}\"", Ok(r#"p = "C:\\new\\table""#)),
            ("p = '${BACKSLASH}'", Ok(r"p = 'C:\new\table'")),
            ("p = '${QUOTE}'", Err("literal string")),
            ("p = \"${QUOTE}\"", Ok("p = \"it's\"")),
            (
                "p = \"a \\\"${HOST}\\\" b\"",
                Ok("p = \"a \\\"kafka:9092\\\" b\""),
            ),
            (
                "p = \"\"\"\n${HOST}\n\"\"\"",
                Ok("p = \"\"\"\nkafka:9092\n\"\"\""),
            ),
        ];
        for (input, want) in cases {
            let got = interpolate(input, &env);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g.text, *w, "{input}"),
                (Err(w), Err(errs)) => assert!(errs[0].contains(w), "{input}: {errs:?}"),
                _ => panic!("{input}: got {got:?}"),
            }
        }
    }

    #[test]
    fn a_value_cannot_add_keys() {
        let text = interpolate("[kafka]\nbrokers = \"${EVIL}\"\n", &env)
            .unwrap()
            .text;
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t.len(), 1, "{text}");
        assert_eq!(
            t["kafka"]["brokers"].as_str(),
            Some("x\"\n[limits]\nmax_event_bytes = 1\n#")
        );
        let errs = interpolate("share = ${EVIL}\n", &env).unwrap_err();
        assert!(!errs[0].contains("limits"), "{errs:?}");
    }

    #[test]
    fn reports_every_missing_variable_with_line() {
        let errs = interpolate("a = \"${A}\"\nb = \"${B}\"\n", &env).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[1].starts_with("line 2:"), "{errs:?}");
    }

    #[test]
    fn values_from_the_environment_are_redacted() {
        let values = vec!["hunter2-secret".to_owned(), "ab".to_owned()];
        assert_eq!(
            redact(
                "invalid type: string \"hunter2-secret\", expected ab",
                &values
            ),
            "invalid type: string <redacted>, expected ab"
        );
    }
}
