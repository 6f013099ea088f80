//! `${VAR}` and `${VAR:-default}` in string values, expanded before the file is typed,
//! so that a secret never has to be written into the file itself.

use serde_yaml::Value;

use super::Problem;

/// Keys whose values are secrets: written literally, they draw a warning.
const SECRET_KEYS: &[&str] = &[
    "password",
    "api_password",
    "api_key",
    "aws_access_key",
    "aws_secret_key",
    "service_key",
    "webhook_url",
];

/// Expands every string in `value`. Unset variables without a default are problems;
/// secrets written literally are warnings.
pub fn expand_tree(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) {
    match value {
        Value::String(s) => {
            let key = path.rsplit('.').next().unwrap_or(path);
            let is_secret = SECRET_KEYS.contains(&key);
            // Blocks the agent ignores get their own warning; no need to lecture on them.
            let ignored = path.starts_with("alert_endpoints.") || key == "api_password";
            if !s.contains("${") {
                if is_secret && !s.is_empty() && !ignored {
                    warnings.push(format!(
                        "{path}: a secret is written in the configuration file; \
                         use ${{VARIABLE}} or {key}_file instead"
                    ));
                }
                return;
            }
            match expand(s, env) {
                Ok(expanded) => *s = expanded,
                Err(message) => problems.push(Problem::new(path, message)),
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_tree(item, &format!("{path}[{i}]"), env, problems, warnings);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let name = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                let child = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                expand_tree(v, &child, env, problems, warnings);
            }
        }
        Value::Tagged(tagged) => expand_tree(&mut tagged.value, path, env, problems, warnings),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands `${VAR}`, `${VAR:-default}` and the escape `$${` (a literal `${`).
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let end = body
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
        let reference = &body[..end];
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{reference}}}` is not a variable name"));
        }
        match (
            env(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
                ));
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PW" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("${PW}", &env).unwrap(), "s3cret");
        assert_eq!(expand("a-${PW}-b", &env).unwrap(), "a-s3cret-b");
        assert_eq!(expand("${MISSING:-6379}", &env).unwrap(), "6379");
        assert_eq!(expand("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(expand("$${PW}", &env).unwrap(), "${PW}");
    }

    #[test]
    fn unset_variables_and_bad_syntax_are_errors() {
        assert!(
            expand("${MISSING}", &env)
                .unwrap_err()
                .contains("MISSING is not set")
        );
        assert!(expand("${PW", &env).unwrap_err().contains("closing"));
        assert!(
            expand("${a b}", &env)
                .unwrap_err()
                .contains("not a variable name")
        );
    }

    #[test]
    fn tree_expansion_names_the_key_and_warns_on_literal_secrets() {
        let mut v: Value =
            serde_yaml::from_str("a: {password: plain, port: '${NOPE}'}\nb: ['${PW}']").unwrap();
        let (mut problems, mut warnings) = (Vec::new(), Vec::new());
        expand_tree(&mut v, "", &env, &mut problems, &mut warnings);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "a.port");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("a.password:"));
        assert!(!warnings[0].contains("plain"));
        assert_eq!(v["b"][0], Value::String("s3cret".into()));
    }
}
