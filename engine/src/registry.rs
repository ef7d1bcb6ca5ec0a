//! The recipe registry: names users type, mapped to recipe functions.
//!
//! The command line takes a registry, so a crate of private recipes gets the same
//! `forge` commands by building its own and calling `forge_cli::main_with`.
//!
//! ```
//! use forge_engine::{dsl::Forge, registry::Registry};
//! let mut r = Registry::new();
//! r.add("greeting", "a text file", |f: &mut Forge| Ok(f.text("greeting", "hi\n")?.into()));
//! let mut f = Forge::new();
//! let target = r.call("greeting", &mut f).unwrap();
//! assert!(r.call("greting", &mut f).unwrap_err().to_string().contains("greeting"));
//! ```

use std::collections::BTreeMap;

use crate::dsl::{Forge, Target};
use crate::error::{Error, Result};

/// A recipe function: declares its graph on the context and returns its target.
pub type RecipeFn = fn(&mut Forge) -> Result<Target>;

/// One registered recipe.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The name `forge build NAME` takes.
    pub name: String,
    /// One line for `forge list`.
    pub about: String,
    /// The recipe function.
    pub f: RecipeFn,
    /// The folder under `output/` that `forge build` links the result to (the
    /// recipe's name when `None`).
    pub output: Option<String>,
}

/// Recipes by name.
#[derive(Clone, Default)]
pub struct Registry {
    recipes: BTreeMap<String, Recipe>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `f` under `name`; a later registration of the same name replaces it.
    pub fn add(&mut self, name: &str, about: &str, f: RecipeFn) -> &mut Self {
        self.recipes
            .insert(name.to_owned(), Recipe { name: name.to_owned(), about: about.to_owned(), f, output: None });
        self
    }

    /// Like [`Registry::add`], with the result linked at `output/<output>`.
    pub fn add_with_output(&mut self, name: &str, about: &str, output: &str, f: RecipeFn) -> &mut Self {
        self.add(name, about, f);
        if let Some(r) = self.recipes.get_mut(name) {
            r.output = Some(output.to_owned());
        }
        self
    }

    /// Every recipe, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Recipe> {
        self.recipes.values()
    }

    /// Looks a recipe up; an unknown name gets an error listing close names.
    pub fn get(&self, name: &str) -> Result<&Recipe> {
        self.recipes.get(name).ok_or_else(|| Error::UnknownRecipe {
            name: name.to_owned(),
            close: close_names(name, self.recipes.keys().map(String::as_str)),
        })
    }

    /// Runs the recipe `name` on `f`, memoized under its name.
    pub fn call(&self, name: &str, f: &mut Forge) -> Result<Target> {
        let recipe = self.get(name)?.f;
        // Recipe functions memoize under their own keys; this one marks the registry call.
        f.memo(&format!("recipe:{name}"), recipe)
    }
}

/// Names within a small edit distance of `name`, or containing it, closest first.
fn close_names<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = known
        .filter_map(|k| {
            let d = edit_distance(name, k);
            (d <= 2.max(name.len() / 3) || k.contains(name) || name.contains(k)).then_some((d, k))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, k)| k.to_owned()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diag + usize::from(ca != cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dummy(f: &mut Forge) -> Result<Target> {
        Ok(f.text("dummy", "x")?.into())
    }

    #[test]
    fn an_unknown_recipe_suggests_close_names() {
        let mut r = Registry::new();
        r.add("alpine-system", "", dummy).add("alpine-rootfs", "", dummy).add("hello", "", dummy);
        let err = r.get("alpine-sytem").unwrap_err().to_string();
        assert!(err.contains("alpine-system"), "{err}");
        assert!(!err.contains("hello"), "{err}");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
