//! The git commit of a working directory, read from `.git` (no `git` process is started).

use std::path::Path;

/// The commit `HEAD` points to in the repository containing `dir`, or `None` when `dir` is
/// not inside a git working tree or the ref cannot be resolved. Handles detached heads,
/// loose and packed refs, and `.git` files of worktrees and submodules.
pub fn head_commit(dir: &Path) -> Option<String> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        let dot = cur.join(".git");
        if dot.is_dir() {
            return resolve(&dot);
        }
        if dot.is_file() {
            let text = std::fs::read_to_string(&dot).ok()?;
            let gitdir = text.trim().strip_prefix("gitdir:")?.trim();
            return resolve(&cur.join(gitdir));
        }
        d = cur.parent();
    }
    None
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn resolve(gitdir: &Path) -> Option<String> {
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    let head = head.trim();
    if is_sha(head) {
        return Some(head.to_string());
    }
    let r = head.strip_prefix("ref:")?.trim();
    // Worktrees keep refs in the common directory.
    let common = std::fs::read_to_string(gitdir.join("commondir"))
        .ok()
        .map(|c| gitdir.join(c.trim()))
        .unwrap_or_else(|| gitdir.to_path_buf());
    for base in [gitdir, common.as_path()] {
        if let Ok(s) = std::fs::read_to_string(base.join(r)) {
            let s = s.trim();
            if is_sha(s) {
                return Some(s.to_string());
            }
        }
        if let Ok(packed) = std::fs::read_to_string(base.join("packed-refs")) {
            for line in packed.lines() {
                if let Some((sha, name)) = line.split_once(' ') {
                    if name.trim() == r && is_sha(sha) {
                        return Some(sha.to_string());
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn loose_packed_detached_and_worktree_heads_resolve() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("repo");
        let g = repo.join(".git");
        std::fs::create_dir_all(g.join("refs/heads")).unwrap();
        std::fs::create_dir_all(repo.join("src/deep")).unwrap();
        std::fs::write(g.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(g.join("refs/heads/main"), format!("{A}\n")).unwrap();
        assert_eq!(head_commit(&repo.join("src/deep")).as_deref(), Some(A));
        std::fs::remove_file(g.join("refs/heads/main")).unwrap();
        std::fs::write(
            g.join("packed-refs"),
            format!("# pack-refs\n{B} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(head_commit(&repo).as_deref(), Some(B));
        // A worktree: `.git` is a file naming a gitdir whose commondir holds the refs.
        let wt = d.path().join("wt");
        let wg = g.join("worktrees/wt");
        std::fs::create_dir_all(&wg).unwrap();
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", wg.display())).unwrap();
        std::fs::write(wg.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(wg.join("commondir"), "../..\n").unwrap();
        assert_eq!(head_commit(&wt).as_deref(), Some(B));
        std::fs::write(g.join("HEAD"), format!("{A}\n")).unwrap();
        assert_eq!(head_commit(&repo).as_deref(), Some(A));
    }

    #[test]
    fn outside_a_repository_or_a_broken_head_is_none() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        assert_eq!(head_commit(d.path()), None);
        std::fs::write(d.path().join(".git/HEAD"), "ref: refs/heads/none\n").unwrap();
        assert_eq!(head_commit(d.path()), None);
    }
}
