//! Planning: which derivations of a graph a build needs, and in what state each is.
//!
//! Node ids are already a topological order (a node can only name existing
//! handles), so a plan is the needed subset of ids, sorted. A node whose outputs
//! are all valid is not descended into: its inputs are not needed.

use std::collections::BTreeMap;

use forge_store::StorePath;

use crate::dsl::{Forge, NodeId};
use crate::error::Result;

/// What a build must do for one derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Every output is in the store.
    Valid,
    /// A fixed-output input to download (or take from a mirror).
    ToFetch,
    /// To build: a sandboxed run or a builtin.
    ToBuild,
}

/// The needed derivations of a graph, in build order.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every derivation the targets need, down to the valid ones, with its state.
    pub steps: BTreeMap<NodeId, State>,
    /// The nodes asked for.
    pub targets: Vec<NodeId>,
}

impl Plan {
    /// Steps with work to do, in a valid build order.
    pub fn work(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.steps.iter().filter(|(_, s)| **s != State::Valid).map(|(id, _)| *id)
    }

    /// How many steps are in `state`.
    pub fn count(&self, state: State) -> usize {
        self.steps.values().filter(|s| **s == state).count()
    }
}

/// Plans `targets`. With `full`, valid nodes are descended into too (for `forge
/// show`, which lists the whole closure).
///
/// ```
/// use forge_engine::dsl::{Forge, Input};
/// use forge_engine::plan::{plan, State};
/// let mut f = Forge::new();
/// let archive = f.fetch("a.tar", &["https://example.org/a.tar"], &format!("sha256:{}", "0".repeat(52))).unwrap();
/// let tree = f.unpack("a", &archive, 1).unwrap();
/// // Nothing is in the store yet: fetch the archive, then build the unpack step.
/// let p = plan(&f, &[tree.node()], false, |_| Ok(false)).unwrap();
/// assert_eq!(p.steps[&archive.node()], State::ToFetch);
/// assert_eq!(p.work().collect::<Vec<_>>(), [archive.node(), tree.node()]);
/// // Once the tree is valid, its input is not needed at all.
/// let p = plan(&f, &[tree.node()], false, |path| Ok(path == tree.path())).unwrap();
/// assert_eq!(p.count(State::Valid), 1);
/// assert_eq!(p.steps.len(), 1);
/// ```
pub fn plan(
    forge: &Forge,
    targets: &[NodeId],
    full: bool,
    mut is_valid: impl FnMut(&StorePath) -> Result<bool>,
) -> Result<Plan> {
    let mut plan = Plan { steps: BTreeMap::new(), targets: targets.to_vec() };
    let mut stack: Vec<NodeId> = targets.to_vec();
    while let Some(id) = stack.pop() {
        if plan.steps.contains_key(&id) {
            continue;
        }
        let node = forge.node(id);
        let mut valid = true;
        for out in node.outputs.values() {
            if !is_valid(out)? {
                valid = false;
                break;
            }
        }
        let state = match (valid, node.drv.builder.is_fixed_output()) {
            (true, _) => State::Valid,
            (false, true) => State::ToFetch,
            (false, false) => State::ToBuild,
        };
        plan.steps.insert(id, state);
        if !valid || full {
            stack.extend(node.deps.iter().copied());
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::Input;
    use std::collections::HashSet;

    fn chain(f: &mut Forge) -> Vec<NodeId> {
        let a = f.text("a", "a").unwrap();
        let b = f.merge("b", &[&a], &[]).unwrap();
        let c = f.merge("c", &[&b], &[]).unwrap();
        vec![a.node(), b.node(), c.node()]
    }

    #[test]
    fn nothing_valid_means_the_whole_closure_in_order() {
        let mut f = Forge::new();
        let ids = chain(&mut f);
        let p = plan(&f, &[ids[2]], false, |_| Ok(false)).unwrap();
        assert_eq!(p.work().collect::<Vec<_>>(), ids);
    }

    #[test]
    fn a_valid_node_cuts_off_its_inputs_unless_full() {
        let mut f = Forge::new();
        let ids = chain(&mut f);
        let valid: HashSet<_> = [f.node(ids[1]).out().clone()].into();
        let p = plan(&f, &[ids[2]], false, |p| Ok(valid.contains(p))).unwrap();
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.work().collect::<Vec<_>>(), vec![ids[2]]);
        let full = plan(&f, &[ids[2]], true, |p| Ok(valid.contains(p))).unwrap();
        assert_eq!(full.steps.len(), 3);
    }

    #[test]
    fn fetches_are_to_fetch_and_the_rest_to_build() {
        let mut f = Forge::new();
        let src =
            f.fetch("x.tar.gz", &["https://example.org/x.tar.gz"], &format!("sha256:{}", "0".repeat(64))).unwrap();
        let tree = f.unpack("x", &src, 1).unwrap();
        let p = plan(&f, &[tree.node()], false, |_| Ok(false)).unwrap();
        assert_eq!(p.steps[&src.node()], State::ToFetch);
        assert_eq!(p.steps[&tree.node()], State::ToBuild);
    }
}
