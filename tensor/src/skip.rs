//! The rule for a test that cannot run on this machine (no GPU adapter, no model file, an
//! adapter without a feature the test is about): it says why and returns, unless the
//! `LAMINA_REQUIRE_*` variable that covers it is `1`, which makes it a failure. CI sets
//! the variables its machine must satisfy, so no check it relies on can pass as a skip.
//! Test support, kept in the library because every crate's tests share it (the tensor
//! crate's own unit tests included); it only reads the environment and prints.

/// Skip (print `why`) or, when `require_var` is `1`, fail (panic) with `why`.
pub fn skip_or_fail(require_var: &str, why: &str) {
    if std::env::var(require_var).is_ok_and(|v| v == "1") {
        panic!("{require_var}=1 but {why}");
    }
    eprintln!("skipping: {why} (set {require_var}=1 to make this a failure)");
}
