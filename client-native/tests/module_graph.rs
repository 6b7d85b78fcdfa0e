//! The crate's modules depend on each other without cycles, so each can be read (and
//! changed) knowing only the ones below it. Read from the sources: a module depends on
//! every `crate::name` its code (not its comments) mentions; `lib.rs` only re-exports.

use std::collections::BTreeMap;
use std::path::Path;

/// Each module of `src/` and the modules its code names.
fn module_graph() -> BTreeMap<String, Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|ext| ext != "rs") || name == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a readable source file");
        graph.insert(name.to_owned(), crate_paths(&source));
    }
    graph
}

/// The modules named as `crate::name` outside comments, `name` being lower case (a
/// module, not a re-exported type).
fn crate_paths(source: &str) -> Vec<String> {
    let mut named = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() && !named.contains(&name) {
                named.push(name);
            }
        }
    }
    named
}

/// A cycle through `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        module: &str,
        graph: &BTreeMap<String, Vec<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(module) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|m| m == module).expect("on the path");
                let mut cycle = path[start..].to_vec();
                cycle.push(module.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(module.to_owned(), Mark::Visiting);
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(module.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn the_modules_form_no_cycle() {
    let graph = module_graph();
    assert!(
        graph.len() > 10 && graph.contains_key("driver") && graph.contains_key("events"),
        "read the crate's modules: {:?}",
        graph.keys()
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_check_reads_code_not_comments_and_finds_a_cycle() {
    let source = "use crate::driver::Driver;\n// crate::events is only mentioned here\n";
    assert_eq!(crate_paths(source), ["driver"]);
    let graph: BTreeMap<String, Vec<String>> = [
        ("events".into(), vec!["baton".into()]),
        ("baton".into(), vec!["driver".into()]),
        ("driver".into(), vec!["events".into()]),
    ]
    .into();
    assert_eq!(
        find_cycle(&graph).expect("a cycle"),
        ["baton", "driver", "events", "baton"]
    );
}
