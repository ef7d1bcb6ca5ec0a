use super::*;
use crate::fstree::Special;

fn base() -> FsTree {
    let mut t = FsTree::new(0);
    t.write("/etc/motd", "hello\nworld\nagain\n", 0o644).unwrap();
    t.write("/bin/ping", vec![0u8, 1, 2, 3, 4, 5], 0o755).unwrap();
    t.symlink("/bin/sh", "busybox").unwrap();
    t.mknod("/dev/null", Special::Char { major: 1, minor: 3 }, 0o666).unwrap();
    t
}

fn diffs(a: FsTree, b: FsTree) -> Vec<Difference> {
    diff(&Side::from_tree(a).unwrap(), &Side::from_tree(b).unwrap())
}

#[test]
fn identical_trees_have_no_differences() {
    assert!(diffs(base(), base()).is_empty());
}

#[test]
fn each_aspect_is_reported_once_in_path_order() {
    let mut b = base();
    b.chmod("/etc/motd", 0o600).unwrap();
    b.chown("/bin/sh", 0, 5).unwrap();
    b.setcap("/bin/ping", "cap_net_raw+ep").unwrap();
    b.symlink("/bin/ls", "busybox").unwrap();
    b.remove("/dev/null").unwrap();
    b.mknod("/dev/null", Special::Char { major: 1, minor: 5 }, 0o666).unwrap();
    let lines: Vec<String> = diffs(base(), b).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        lines,
        [
            "/bin/ls: added symlink",
            "/bin/ping: xattr (none) -> security.capability=cap_net_raw+ep",
            "/bin/sh: owner 0:0 -> 0:5",
            "/dev/null: dev 1,3 -> 1,5",
            "/etc/motd: mode 0644 -> 0600",
        ]
    );
}

#[test]
fn text_content_difference_shows_the_first_differing_lines() {
    let mut b = base();
    b.write("/etc/motd", "hello\nWORLD\nagain\n", 0o644).unwrap();
    let d = diffs(base(), b);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].aspect, Aspect::Content);
    assert_eq!(d[0].detail, ["@@ line 2 @@", "-world", "+WORLD"]);
    assert!(d[0].old.starts_with("size=18 sha256="), "{}", d[0].old);
}

#[test]
fn binary_content_difference_gives_the_first_differing_offset() {
    let mut b = base();
    b.write("/bin/ping", vec![0u8, 1, 2, 9, 4, 5], 0o755).unwrap();
    let d = diffs(base(), b);
    assert_eq!(d[0].detail, ["first differing byte at offset 3"]);
}

#[test]
fn type_change_and_removal_are_reported() {
    let mut b = base();
    b.remove("/bin/sh").unwrap();
    b.write("/bin/sh", "", 0o777).unwrap();
    b.remove("/etc/motd").unwrap();
    let lines: Vec<String> = diffs(base(), b).iter().map(|d| d.to_string()).collect();
    assert_eq!(lines, ["/bin/sh: type symlink -> file", "/etc/motd: removed file"]);
}

#[test]
fn a_manifest_equals_the_tree_it_lists() {
    let text = manifest::manifest(&base()).unwrap();
    let m = Side::from_manifest(&text).unwrap();
    assert!(diff(&m, &Side::from_tree(base()).unwrap()).is_empty());
}

#[test]
fn manifest_without_contents_still_reports_content_changes() {
    let mut b = base();
    b.write("/etc/motd", "x", 0o644).unwrap();
    let m = Side::from_manifest(&manifest::manifest(&base()).unwrap()).unwrap();
    let d = diff(&m, &Side::from_tree(b).unwrap());
    assert_eq!(d.len(), 1);
    assert!(d[0].detail.is_empty());
}

#[test]
fn malformed_manifest_lines_are_refused_with_their_number() {
    assert_eq!(Side::from_manifest("/ dir 0755 0 0\n/a file 0644 x 0\n").err().unwrap().0, 2);
    assert!(Side::from_manifest("/ dir 0755 0 0\n/a file 0644 0 0 bogus\n").is_err());
    assert!(Side::from_manifest("/ dir 0755 0 0\n/ dir 0755 0 0\n").is_err());
}

#[test]
fn escaped_paths_find_their_contents() {
    let mut a = FsTree::new(0);
    a.write("/odd name", "one\n", 0o644).unwrap();
    let mut b = FsTree::new(0);
    b.write("/odd name", "two\n", 0o644).unwrap();
    let d = diffs(a, b);
    assert_eq!(d[0].path, "/odd\\x20name");
    assert_eq!(d[0].detail, ["@@ line 1 @@", "-one", "+two"]);
}
