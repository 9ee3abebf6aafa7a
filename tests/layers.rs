//! The shape of `src/`, checked from the source itself (parsed with `syn`):
//!
//! - **No import loop among its files.** An edge runs from a file to every file whose items it
//!   names: `use crate::..`, `use super::..`, `use self::..` and such paths in types, expressions
//!   and macro arguments, resolved to the file of the longest module prefix. A module file's own
//!   `mod child;` declarations and its `pub use child::..` re-exports are how Rust assembles a
//!   module and are not edges; everything else is, parent to child included. Test modules
//!   (`#[cfg(test)]`) are left out.
//! - **Layers point down.** The parser and image layers (`jbd2`, `xlog`, `ext4`, `xfs`, `image`)
//!   name nothing of the layers above them (`cli`, `open`, `oracle`, `replay`, `vm`, `bench`).
//! - **No file over 800 lines** unless it is listed below with the one job it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use syn::visit::Visit;

const LOWER: &[&str] = &["jbd2", "xlog", "ext4", "xfs", "image"];
const UPPER: &[&str] = &["cli", "open", "oracle", "replay", "vm", "bench"];

/// Files allowed past 800 lines, each with the single job that makes it long.
const LONG_FILES: &[(&str, &str)] = &[];

/// A file of `src/` and its module path (`src/jbd2/recover.rs` is `jbd2::recover`).
struct SourceFile {
    rel: String,
    module: Vec<String>,
    text: String,
}

fn sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = vec![];
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read src/") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                let mut module: Vec<String> =
                    rel.trim_end_matches(".rs").split('/').map(String::from).collect();
                if module.last().is_some_and(|m| m == "mod" || m == "lib" || m == "main") {
                    module.pop();
                }
                let text = std::fs::read_to_string(&p).expect("read source");
                out.push(SourceFile { rel: format!("src/{rel}"), module, text });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// The module paths one file names.
struct Names<'a> {
    module: &'a [String],
    is_module_file: bool,
    children: BTreeSet<String>,
    found: Vec<Vec<String>>,
}

impl Names<'_> {
    /// An absolute module path for a path that starts with `crate`, `super` or `self`.
    fn absolute(&self, segs: &[String]) -> Option<Vec<String>> {
        let (first, rest) = segs.split_first()?;
        let mut base: Vec<String> = match first.as_str() {
            "crate" => vec![],
            "self" => self.module.to_vec(),
            "super" => self.module[..self.module.len().saturating_sub(1)].to_vec(),
            _ => return None,
        };
        let mut rest = rest;
        while let Some((s, r)) = rest.split_first() {
            if s != "super" {
                break;
            }
            base.pop();
            rest = r;
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn add(&mut self, segs: Vec<String>) {
        if let Some(abs) = self.absolute(&segs) {
            self.found.push(abs);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, t: &syn::UseTree) {
        match t {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut v = prefix.clone();
                v.push(n.ident.to_string());
                self.add(v);
            }
            syn::UseTree::Rename(n) => {
                let mut v = prefix.clone();
                v.push(n.ident.to_string());
                self.add(v);
            }
            syn::UseTree::Glob(_) => self.add(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// `pub use child::..` in a module file re-exports its own child.
    fn is_reexport_of_child(&self, u: &syn::ItemUse) -> bool {
        if !self.is_module_file || matches!(u.vis, syn::Visibility::Inherited) {
            return false;
        }
        let first = match &u.tree {
            syn::UseTree::Path(p) if p.ident == "self" => match &*p.tree {
                syn::UseTree::Path(q) => q.ident.to_string(),
                _ => return false,
            },
            syn::UseTree::Path(p) => p.ident.to_string(),
            _ => return false,
        };
        self.children.contains(&first)
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test"))
    })
}

impl<'ast> Visit<'ast> for Names<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        syn::visit::visit_item_mod(self, m);
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_cfg_test(&u.attrs) || self.is_reexport_of_child(u) {
            return;
        }
        self.use_tree(&mut vec![], &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(segs);
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // Macro arguments are tokens, not syntax: find `crate :: a :: b` runs in them.
        let text = m.tokens.to_string();
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut i = 0;
        while i < words.len() {
            if matches!(words[i], "crate" | "super" | "self") && words.get(i + 1) == Some(&"::") {
                let mut segs = vec![words[i].to_string()];
                let mut j = i + 1;
                while words.get(j) == Some(&"::") && j + 1 < words.len() {
                    segs.push(
                        words[j + 1].trim_matches(|c: char| !c.is_alphanumeric() && c != '_').to_string(),
                    );
                    j += 2;
                }
                self.add(segs);
                i = j;
            } else {
                i += 1;
            }
        }
        syn::visit::visit_macro(self, m);
    }
}

/// file -> files it names.
fn graph(files: &[SourceFile]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<Vec<String>, &str> =
        files.iter().map(|f| (f.module.clone(), f.rel.as_str())).collect();
    let mut g = BTreeMap::new();
    for f in files {
        let ast = syn::parse_file(&f.text).unwrap_or_else(|e| panic!("{}: {e}", f.rel));
        let is_module_file = f.rel.ends_with("/mod.rs") || f.rel == "src/lib.rs" || f.rel == "src/main.rs";
        let children = ast
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Mod(m) if m.content.is_none() => Some(m.ident.to_string()),
                _ => None,
            })
            .collect();
        let mut n = Names { module: &f.module, is_module_file, children, found: vec![] };
        n.visit_file(&ast);
        let mut to = BTreeSet::new();
        for path in n.found {
            let target = (0..=path.len()).rev().find_map(|k| by_module.get(&path[..k]).copied());
            if let Some(t) = target
                && t != f.rel
            {
                to.insert(t.to_string());
            }
        }
        g.insert(f.rel.clone(), to);
    }
    g
}

/// The strongly connected components with more than one file (Tarjan).
fn loops(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn walk<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                walk(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = vec![];
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        out: vec![],
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            walk(&mut t, v);
        }
    }
    t.out
}

fn top(rel: &str) -> &str {
    let rest = rel.trim_start_matches("src/");
    rest.split('/').next().unwrap_or(rest).trim_end_matches(".rs")
}

/// One path from `a` back to `a` inside a loop, for the message.
fn cycle_through(g: &BTreeMap<String, BTreeSet<String>>, comp: &[String]) -> String {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    let start = comp[0].as_str();
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in g[v].iter().map(String::as_str).filter(|w| inside.contains(w)) {
            if w == start {
                let mut path = vec![start];
                let mut x = v;
                while x != start {
                    path.push(x);
                    x = prev[x];
                }
                path.push(start);
                let last = path.len() - 1;
                path[1..last].reverse();
                return path.join(" -> ");
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    comp.join(", ")
}

#[test]
fn the_graph_sees_imports() {
    // The checker itself must see edges, or the tests below would pass on nothing.
    let files = sources();
    assert!(files.len() > 80, "only {} files under src/", files.len());
    let g = graph(&files);
    let edges: usize = g.values().map(BTreeSet::len).sum();
    assert!(edges > 200, "only {edges} import edges found");
    assert!(g["src/cli/journal.rs"].iter().any(|t| t.starts_with("src/xlog/")), "cli/journal.rs -> xlog");
}

#[test]
fn no_import_loop_among_files() {
    let g = graph(&sources());
    let found: Vec<String> = loops(&g).iter().map(|c| cycle_through(&g, c)).collect();
    assert!(found.is_empty(), "{} import loop(s) in src/:\n  {}", found.len(), found.join("\n  "));
}

#[test]
fn parser_and_image_layers_name_nothing_above_them() {
    let g = graph(&sources());
    let mut bad = vec![];
    for (from, to) in &g {
        if !LOWER.contains(&top(from)) {
            continue;
        }
        for t in to.iter().filter(|t| UPPER.contains(&top(t))) {
            bad.push(format!("{from} -> {t}"));
        }
    }
    assert!(bad.is_empty(), "lower layers import upper ones:\n  {}", bad.join("\n  "));
}

#[test]
fn no_file_over_800_lines_without_one_job() {
    let mut bad = vec![];
    for f in sources() {
        let n = f.text.lines().count();
        if n > 800 && !LONG_FILES.iter().any(|(p, _)| *p == f.rel) {
            bad.push(format!("{} ({n} lines)", f.rel));
        }
    }
    assert!(bad.is_empty(), "files over 800 lines:\n  {}", bad.join("\n  "));
}
