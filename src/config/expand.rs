//! `${VAR}` and `${VAR:-default}` in string values, expanded before the file is typed,
//! so that a secret never has to be written into the file itself.

use std::collections::BTreeSet;

use serde_yaml::Value;

use crate::config_kit::ctx::Problem;
use crate::config_kit::secrets::is_secret_path;

/// Expands every string in `value`. Unset variables without a default are problems.
/// The paths of strings that took at least one value from the environment go into
/// `from_env`: validation warns about a secret that is not among them (written in the
/// file itself, or only a `${VAR:-default}`'s default).
pub fn expand_tree(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
    from_env: &mut BTreeSet<String>,
) {
    match value {
        Value::String(s) => {
            if !s.contains("${") {
                return;
            }
            match expand(s, env) {
                Ok((expanded, used_env)) => {
                    *s = expanded;
                    if used_env {
                        from_env.insert(path.to_owned());
                    }
                }
                // A secret's text is not shown, even around a bad reference.
                Err(_) if is_secret_path(path) => problems.push(Problem::new(
                    path,
                    "holds a `${` that is not a variable reference (value hidden); write \
                     ${VARIABLE}, or $${ for a literal `${`",
                )),
                Err(message) => problems.push(Problem::new(path, message)),
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_tree(item, &format!("{path}[{i}]"), env, problems, from_env);
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
                expand_tree(v, &child, env, problems, from_env);
            }
        }
        // A custom tag means nothing here, and inside a block read with flattened keys
        // it would make the whole block unreadable: refuse it by key, read the value.
        Value::Tagged(tagged) => {
            problems.push(Problem::new(
                path,
                "YAML tags (`!name value`) are not supported (value hidden)",
            ));
            let mut inner = std::mem::take(&mut tagged.value);
            expand_tree(&mut inner, path, env, problems, from_env);
            *value = inner;
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands `${VAR}`, `${VAR:-default}` and the escape `$${` (a literal `${`); also
/// says whether a variable's value (not only a default) went into the result.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(text.len());
    let mut used_env = false;
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
            .ok_or_else(|| "`${` without a closing `}`; write $${ for a literal `${`".to_owned())?;
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
            (Some(v), _) => {
                out.push_str(&v);
                used_env = true;
            }
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
    Ok((out, used_env))
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

    fn expanded(text: &str) -> (String, bool) {
        expand(text, &env).unwrap()
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expanded("${PW}"), ("s3cret".into(), true));
        assert_eq!(expanded("a-${PW}-b"), ("a-s3cret-b".into(), true));
        assert_eq!(expanded("${MISSING:-6379}"), ("6379".into(), false));
        assert_eq!(expanded("${EMPTY:-x}"), ("x".into(), false));
        assert_eq!(expanded("${EMPTY}"), (String::new(), true));
        assert_eq!(expanded("cost $5"), ("cost $5".into(), false));
        assert_eq!(expanded("$${PW}"), ("${PW}".into(), false));
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
    fn tree_expansion_names_the_key_and_records_what_came_from_the_environment() {
        let mut v: Value = serde_yaml::from_str(
            "a: {password: plain, port: '${NOPE}', api_key: '${NOPE:-dflt}'}\nb: ['${PW}']\n\
             c: {password: 'hun${ter2'}",
        )
        .unwrap();
        let (mut problems, mut from_env) = (Vec::new(), BTreeSet::new());
        expand_tree(&mut v, "", &env, &mut problems, &mut from_env);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["a.port", "c.password"]);
        assert!(!problems[1].message.contains("hun"), "{:?}", problems[1]);
        assert_eq!(from_env, BTreeSet::from(["b[0]".to_owned()]));
        assert_eq!(v["b"][0], Value::String("s3cret".into()));
    }
}
