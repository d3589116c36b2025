//! Builds the C half of ntsim: `DbgPrint`/`DbgPrintEx`, which are C-variadic.

fn main() {
    println!("cargo::rerun-if-changed=csrc/dbgprint.c");
    cc::Build::new()
        .file("csrc/dbgprint.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("ntsim_dbgprint");
}
