//! forge-recipes: the recipes that describe the AGNOS-on-Alpine build.
