//! Derivations: one node of the build graph as plain data.
//!
//! A derivation's identity is the sha256 of its canonical JSON (sorted keys, no
//! whitespace, inputs by store path; see docs/derivation.md). That hash names the
//! outputs of built derivations. Fixed-output derivations (fetches, git checkouts)
//! are named by their declared content hash instead, so a changed URL with the same
//! hash changes nothing downstream.

use std::collections::{BTreeMap, BTreeSet};

use forge_store::{Algo, Hash, StorePath};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The system a derivation builds on. Only what forge can run is accepted.
pub const SYSTEMS: &[&str] = &["x86_64-linux", "aarch64-linux"];

/// One node of the build graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    /// The name of the main output's store path (`hello-2.10`).
    pub name: String,
    /// Where the builder runs: `x86_64-linux` or `aarch64-linux`.
    pub system: String,
    /// How the outputs are made.
    pub builder: Builder,
    /// Every store path the build may read. Sysroot layers are inputs too.
    #[serde(default)]
    pub inputs: BTreeSet<StorePath>,
    /// Variables the builder sees, on top of the sandbox's fixed set.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Output names; `out` is the main one. Sorted, at least one.
    #[serde(default = "default_outputs")]
    pub outputs: BTreeSet<String>,
}

fn default_outputs() -> BTreeSet<String> {
    BTreeSet::from(["out".to_owned()])
}

/// How a derivation's outputs are made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Builder {
    /// Download one file; the output is that file, checked against `hash`.
    Fetch {
        /// Where to download from, in order (after mirrors); `mirror://` URLs need one.
        urls: Vec<String>,
        /// The file's hash, which names the output.
        hash: Hash,
        /// Make the file executable (0555).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        executable: bool,
    },
    /// Check out `rev` of a git repository; the output is the tree without `.git`
    /// (only `subpaths` when given), checked against its NAR hash.
    Git {
        /// The repository's URL.
        url: String,
        /// The commit (a full hex id).
        rev: String,
        /// NAR hash of the checked-out tree, which names the output.
        #[serde(rename = "narHash")]
        nar_hash: Hash,
        /// Only these paths of the tree, when not empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        subpaths: Vec<String>,
    },
    /// Run `script` with `/bin/sh -e` in the sandbox, with the `sysroot` layers
    /// stacked as its root filesystem.
    Run {
        /// The layers stacked as `/`, bottom first (each also an input).
        sysroot: Vec<StorePath>,
        /// The script.
        script: String,
    },
    /// A versioned step carried out in-process by forge (unpack, merge, images...).
    Builtin {
        /// The builtin's name (`text`, `merge`, `unpack`, ...).
        name: String,
        /// Its version: a new version for any change in what it writes.
        version: u32,
        /// Its arguments, as the builtin defines them.
        #[serde(default)]
        args: serde_json::Value,
    },
}

impl Builder {
    /// The shell script of a sandboxed step; `None` for fetches and builtins.
    pub fn script(&self) -> Option<&str> {
        match self {
            Builder::Run { script, .. } => Some(script),
            _ => None,
        }
    }

    /// Whether the output is fixed by a declared content hash.
    pub fn is_fixed_output(&self) -> bool {
        matches!(self, Builder::Fetch { .. } | Builder::Git { .. })
    }
}

impl Derivation {
    /// The canonical JSON: keys sorted, no insignificant whitespace.
    ///
    /// ```
    /// use forge_engine::drv::{Builder, Derivation};
    /// let d = Derivation::new("hello", Builder::Builtin { name: "text".into(), version: 1, args: "hi".into() });
    /// assert!(d.canonical_json().starts_with(r#"{"builder":{"args":"hi","kind":"builtin""#));
    /// ```
    pub fn canonical_json(&self) -> String {
        // serde_json's Value keeps object keys in a BTreeMap, so going through it sorts them.
        let value = serde_json::to_value(self).expect("a derivation always serializes");
        value.to_string()
    }

    /// A derivation on the machine's own system with the single output `out`.
    pub fn new(name: &str, builder: Builder) -> Self {
        Derivation {
            name: name.to_owned(),
            system: host_system().to_owned(),
            builder,
            inputs: BTreeSet::new(),
            env: BTreeMap::new(),
            outputs: default_outputs(),
        }
    }

    /// Parses a derivation given as JSON (`forge build --drv`), checking it.
    pub fn from_json(text: &str) -> Result<Self> {
        let drv: Derivation = serde_json::from_str(text)
            .map_err(|e| Error::BadDerivation { name: "<json>".into(), why: e.to_string() })?;
        drv.validate()?;
        Ok(drv)
    }

    /// Checks what serde cannot: names, systems, outputs, sysroot membership.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Error::BadDerivation { name: self.name.clone(), why };
        forge_store::path::validate_name(&self.name)?;
        if !SYSTEMS.contains(&self.system.as_str()) {
            return Err(bad(format!("system `{}` is not one of {}", self.system, SYSTEMS.join(", "))));
        }
        if self.outputs.is_empty() || !self.outputs.contains("out") {
            return Err(bad("the outputs must include `out`".into()));
        }
        if self.builder.is_fixed_output() && self.outputs.len() != 1 {
            return Err(bad("a fixed-output derivation has exactly one output, `out`".into()));
        }
        if let Builder::Run { sysroot, .. } = &self.builder {
            if let Some(layer) = sysroot.iter().find(|l| !self.inputs.contains(*l)) {
                return Err(bad(format!("sysroot layer {layer} is not among the inputs")));
            }
        }
        if let Some(key) = self.env.keys().find(|k| k.is_empty() || k.contains('=') || k.contains('\0')) {
            return Err(bad(format!("environment variable name {key:?} is not valid")));
        }
        Ok(())
    }

    /// sha256 of the canonical JSON: the derivation's identity.
    pub fn hash(&self) -> Hash {
        Hash::of(Algo::Sha256, self.canonical_json().as_bytes())
    }

    /// The store path of each output, by output name.
    pub fn output_paths(&self) -> Result<BTreeMap<String, StorePath>> {
        let fixed = match &self.builder {
            Builder::Fetch { hash, .. } => Some(StorePath::for_flat_file(hash, &self.name)?),
            Builder::Git { nar_hash, .. } => Some(StorePath::for_source(nar_hash, &self.name, &[])?),
            _ => None,
        };
        if let Some(path) = fixed {
            return Ok(BTreeMap::from([("out".to_owned(), path)]));
        }
        let drv_hash = self.hash();
        self.outputs
            .iter()
            .map(|o| {
                let name = if o == "out" { self.name.clone() } else { format!("{}-{o}", self.name) };
                Ok((o.clone(), StorePath::make(&format!("output:{o}"), &drv_hash, &name)?))
            })
            .collect()
    }

    /// The main output's store path.
    pub fn out_path(&self) -> Result<StorePath> {
        let mut outs = self.output_paths()?;
        outs.remove("out")
            .ok_or_else(|| Error::BadDerivation { name: self.name.clone(), why: "no `out` output".into() })
    }
}

/// The system string of the machine forge runs on.
pub fn host_system() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-linux"
    } else {
        "x86_64-linux"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(url: &str) -> Derivation {
        Derivation::new(
            "hello-2.10.tar.gz",
            Builder::Fetch {
                urls: vec![url.into()],
                hash: "sha256:31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b".parse().unwrap(),
                executable: false,
            },
        )
    }

    fn run_on(src: &StorePath, script: &str) -> Derivation {
        let layer: StorePath = src.clone();
        let mut d = Derivation::new("hello-2.10", Builder::Run { sysroot: vec![layer.clone()], script: script.into() });
        d.system = "x86_64-linux".into();
        d.inputs.insert(layer);
        d
    }

    /// The golden form and hash: if this changes, every store path forge ever
    /// computed changes. Update only with a deliberate format change.
    #[test]
    fn canonical_json_and_hash_are_stable() {
        let mut d = fetch("https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz");
        d.system = "x86_64-linux".into();
        assert_eq!(
            d.canonical_json(),
            r#"{"builder":{"hash":"sha256:0ssi1wpaf7plaswqqjwigppsg5fyh99vdlb9kzl7c9lng89ndq1i","kind":"fetch","urls":["https://ftp.gnu.org/gnu/hello/hello-2.10.tar.gz"]},"env":{},"inputs":[],"name":"hello-2.10.tar.gz","outputs":["out"],"system":"x86_64-linux"}"#
        );
        assert_eq!(d.hash().to_string(), GOLDEN_FETCH_DRV_HASH);
    }
    // `printf %s JSON | sha256sum`, then `nix-hash --type sha256 --to-base32`.
    const GOLDEN_FETCH_DRV_HASH: &str = "sha256:0sdis64af6959azglk9qqmlw9vawsjzd8h49p28gzwnkwf391i96";

    #[test]
    fn a_changed_url_with_the_same_hash_keeps_the_output_path() {
        let a = fetch("https://example.org/a.tar.gz");
        let b = fetch("https://mirror.example.net/b.tar.gz");
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.out_path().unwrap(), b.out_path().unwrap());
    }

    #[test]
    fn a_changed_input_or_script_changes_the_output_path() {
        let src = fetch("https://example.org/a").out_path().unwrap();
        let other = StorePath::for_source(&Hash::of(Algo::Sha256, b"other"), "x", &[]).unwrap();
        let base = run_on(&src, "make").out_path().unwrap();
        assert_ne!(base, run_on(&other, "make").out_path().unwrap());
        assert_ne!(base, run_on(&src, "make install").out_path().unwrap());
        assert_eq!(base, run_on(&src, "make").out_path().unwrap());
    }

    #[test]
    fn json_round_trips_and_unknown_fields_are_refused() {
        let d = fetch("https://example.org/a");
        assert_eq!(Derivation::from_json(&d.canonical_json()).unwrap(), d);
        let bad = d.canonical_json().replacen('{', r#"{"surprise":1,"#, 1);
        assert!(Derivation::from_json(&bad).unwrap_err().to_string().contains("surprise"));
    }

    #[test]
    fn a_sysroot_layer_must_be_an_input() {
        let src = fetch("https://example.org/a").out_path().unwrap();
        let mut d = run_on(&src, "true");
        d.inputs.clear();
        assert!(d.validate().unwrap_err().to_string().contains("not among the inputs"));
    }

    #[test]
    fn extra_outputs_get_suffixed_names() {
        let mut d = Derivation::new("lib", Builder::Builtin { name: "text".into(), version: 1, args: "x".into() });
        d.outputs.insert("dev".into());
        let outs = d.output_paths().unwrap();
        assert!(outs["dev"].name().ends_with("lib-dev"));
        assert_eq!(outs["out"].name(), "lib");
    }
}
