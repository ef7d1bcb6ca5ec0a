//! `forge why`: the cache-miss explainer.
//!
//! When a recipe's output is not in the store, compare its derivation with the one
//! built last under the same name, and follow changed inputs down to the first
//! changed leaf: a URL, a hash, a patch, an env var, a flag.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use forge_store::{Store, StorePath};
use serde_json::Value;

use crate::drv::Derivation;
use crate::dsl::{Forge, NodeId};
use crate::error::Result;
use crate::record;

/// How deep to follow changed inputs before summarizing.
const MAX_DEPTH: usize = 32;

/// Explains, in text, why `target` would be built.
pub fn explain(store: &Store, forge: &Forge, target: NodeId) -> Result<String> {
    let node = forge.node(target);
    let mut out = String::new();
    let mut valid = true;
    for p in node.outputs.values() {
        valid &= store.is_valid(p)?;
    }
    if valid {
        let _ = writeln!(out, "{} is up to date: {} is in the store.", node.drv.name, node.out());
        return Ok(out);
    }
    let Some(old) = record::last_built_named(store, &node.drv.name, &node.hash.to_string())? else {
        let _ = writeln!(
            out,
            "{} is not in the store, and no earlier build named `{}` is recorded here, so there is nothing to compare with.",
            node.out(),
            node.drv.name
        );
        return Ok(out);
    };
    let _ = writeln!(
        out,
        "{} is not in the store. Compared with the last build of `{}` ({}):",
        node.out(),
        node.drv.name,
        old.hash()
    );
    diff(store, forge, &old, &node.drv, 1, &mut out)?;
    Ok(out)
}

fn diff(
    store: &Store,
    forge: &Forge,
    old: &Derivation,
    new: &Derivation,
    depth: usize,
    out: &mut String,
) -> Result<()> {
    let indent = "  ".repeat(depth);
    let (mut o, mut n) = (to_value(old), to_value(new));
    // Inputs are compared by role below; every other field as JSON.
    strip_inputs(&mut o);
    strip_inputs(&mut n);
    let mut leaves = Vec::new();
    diff_values("", &o, &n, &mut leaves);
    for (field, before, after) in leaves {
        let _ = writeln!(out, "{indent}{field}: {before} -> {after}");
    }
    let removed: BTreeSet<&StorePath> = old.inputs.difference(&new.inputs).collect();
    let added: BTreeSet<&StorePath> = new.inputs.difference(&old.inputs).collect();
    for new_in in &added {
        // The old input with the same name played the same role.
        let Some(old_in) = removed.iter().find(|p| p.name() == new_in.name()) else {
            let _ = writeln!(out, "{indent}new input {new_in}");
            continue;
        };
        let _ = writeln!(
            out,
            "{indent}input {} changed ({} -> {}):",
            new_in.name(),
            old_in.hash_part(),
            new_in.hash_part()
        );
        let old_drv = match record::producer(store, old_in)? {
            Some(h) => record::derivation(store, &h)?,
            None => None,
        };
        let new_drv = forge.producer(new_in).map(|id| &forge.node(id).drv);
        match (old_drv, new_drv) {
            (Some(o), Some(n)) if depth < MAX_DEPTH => diff(store, forge, &o, n, depth + 1, out)?,
            (Some(_), Some(_)) => {
                let _ = writeln!(out, "{indent}  (deeper changes not shown)");
            }
            _ => {
                let _ = writeln!(out, "{indent}  (the old input's derivation is not recorded here)");
            }
        }
    }
    for old_in in removed.iter().filter(|p| !added.iter().any(|a| a.name() == p.name())) {
        let _ = writeln!(out, "{indent}input {old_in} was removed");
    }
    Ok(())
}

fn to_value(d: &Derivation) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}

fn strip_inputs(v: &mut Value) {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("inputs");
        if let Some(Value::Object(b)) = obj.get_mut("builder") {
            // A run step's sysroot lists inputs again; those are compared as inputs.
            b.remove("sysroot");
        }
    }
}

/// Collects (field path, old, new) for every differing leaf.
fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_values(&sub, p, q, out),
                    (Some(p), None) => out.push((sub, show(p), "(absent)".into())),
                    (None, Some(q)) => out.push((sub, "(absent)".into(), show(q))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_values(&format!("{path}[{i}]"), p, q, out);
            }
        }
        (Value::String(x), Value::String(y)) if x != y && (x.contains('\n') || y.contains('\n')) => {
            out.push((format!("{path} (first changed line)"), first_diff_line(x, y).0, first_diff_line(x, y).1));
        }
        _ if a != b => out.push((path.to_owned(), show(a), show(b))),
        _ => {}
    }
}

fn first_diff_line(a: &str, b: &str) -> (String, String) {
    let (mut la, mut lb) = (a.lines(), b.lines());
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => return (quote(x.unwrap_or("(end)")), quote(y.unwrap_or("(end)"))),
        }
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}...", &s[..s.char_indices().nth(117).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s
    }
}

fn quote(s: &str) -> String {
    show(&Value::String(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_differences_name_the_field_path() {
        let a = serde_json::json!({"env": {"CFLAGS": "-O2"}, "builder": {"urls": ["a"]}});
        let b = serde_json::json!({"env": {"CFLAGS": "-O3"}, "builder": {"urls": ["b"]}});
        let mut out = Vec::new();
        diff_values("", &a, &b, &mut out);
        assert_eq!(out[0], ("builder.urls[0]".into(), "\"a\"".into(), "\"b\"".into()));
        assert_eq!(out[1], ("env.CFLAGS".into(), "\"-O2\"".into(), "\"-O3\"".into()));
    }

    #[test]
    fn scripts_show_their_first_changed_line() {
        let a = serde_json::json!({"script": "cd src\nmake\nmake install"});
        let b = serde_json::json!({"script": "cd src\nmake -j4\nmake install"});
        let mut out = Vec::new();
        diff_values("", &a, &b, &mut out);
        assert_eq!(out, vec![("script (first changed line)".into(), "\"make\"".into(), "\"make -j4\"".into())]);
    }
}
