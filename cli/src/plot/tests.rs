use super::*;

/// A small XML checker: every tag closes in order, attributes are quoted, text has no
/// raw `<` or `&` outside entities. Returns the element names in document order.
fn check_xml(doc: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = doc.trim();
    while !rest.is_empty() {
        match rest.find('<') {
            Some(0) => {}
            Some(i) => {
                check_text(&rest[..i]);
                rest = &rest[i..];
            }
            None => {
                check_text(rest);
                break;
            }
        }
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body.split_whitespace().next().expect("empty tag").to_string();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "tag name {name:?}");
        assert_eq!(body.matches('"').count() % 2, 0, "unbalanced quotes in <{body}>");
        for attr in body[name.len()..].split('"').step_by(2).map(str::trim).filter(|a| !a.is_empty()) {
            assert!(attr.ends_with('='), "attribute without a quoted value in <{body}>: {attr:?}");
        }
        names.push(name.clone());
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(names.first().map(String::as_str), Some("svg"));
    names
}

fn check_text(t: &str) {
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        let entity = &rest[i..rest[i..].find(';').map_or(rest.len(), |j| i + j + 1)];
        assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity), "raw & in text: {t:?}");
        rest = &rest[i + 1..];
    }
}

fn count(doc: &str, name: &str) -> usize {
    check_xml(doc).iter().filter(|n| *n == name).count()
}

fn chart() -> Chart {
    Chart::new("a <title> & more").x_axis("x \"quoted\"", Scale::Linear).y_axis("y", Scale::Log)
}

#[test]
fn a_chart_is_well_formed_with_its_text_escaped() {
    let svg = chart()
        .series(Series::line("one", vec![(0.0, 1.0), (1.0, 10.0), (2.0, 100.0)]))
        .series(Series::scatter("two & three", vec![(0.5, 5.0), (1.5, 50.0)]).labels(vec!["q8_0".into(), "<b>".into()]))
        .hline(20.0, "ref <20>", "#d62728")
        .to_svg();
    check_xml(&svg);
    assert!(svg.contains("a &lt;title&gt; &amp; more") && svg.contains("two &amp; three"));
    assert!(svg.contains(">q8_0<") && svg.contains(">&lt;b&gt;<"), "point labels");
    assert_eq!(count(&svg, "polyline"), 1);
    // Two scatter points plus the legend's swatch.
    assert_eq!(count(&svg, "circle"), 3);
    // Log ticks 1, 10, 100 and a legend entry per series.
    for label in [">1<", ">10<", ">100<", ">one<"] {
        assert!(svg.contains(label), "{label}");
    }
}

#[test]
fn nan_infinite_and_non_positive_points_are_skipped() {
    let pts = vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, f64::INFINITY), (4.0, 5.0), (5.0, -1.0), (6.0, 0.0)];
    let svg = chart().series(Series::line("s", pts.clone())).series(Series::scatter("p", pts)).to_svg();
    check_xml(&svg);
    for bad in ["NaN", "inf"] {
        assert!(!svg.contains(bad), "{bad} in {svg}");
    }
    // The line breaks at each skipped point: three one-point pieces drawn as dots; three
    // scatter points; and the two legend swatches (a line, a dot).
    assert_eq!(count(&svg, "polyline"), 0);
    assert_eq!(count(&svg, "circle"), 3 + 3 + 1);
    let linear = Chart::new("t").series(Series::line("s", vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, 4.0)]));
    assert_eq!(count(&linear.to_svg(), "polyline"), 1);
}

#[test]
fn empty_and_flat_charts_still_render() {
    for c in [
        Chart::new("nothing"),
        Chart::new("empty series").series(Series::line("s", vec![])),
        Chart::new("all skipped").series(Series::line("s", vec![(f64::NAN, 1.0), (1.0, f64::NAN)])),
        chart().series(Series::line("non-positive on a log axis", vec![(0.0, 0.0), (1.0, -3.0)])),
    ] {
        let svg = c.to_svg();
        check_xml(&svg);
        assert!(svg.contains("no data"), "{}", c.title);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
    // One point, or a constant series: a non-empty range around it.
    for pts in [vec![(3.0, 7.0)], vec![(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)]] {
        let svg = Chart::new("flat").series(Series::line("s", pts)).to_svg();
        check_xml(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("no data"), "{svg}");
    }
}

#[test]
fn stacked_panels_have_their_own_clip_regions() {
    let a = Chart::new("a").series(Series::line("s", vec![(0.0, 1.0), (1.0, 2.0)])).size(600.0, 300.0);
    let b = Chart::new("b").series(Series::line("t", vec![(0.0, 1.0), (1.0, 2.0)])).size(600.0, 200.0);
    let svg = figure(&[a, b]);
    check_xml(&svg);
    assert!(svg.contains(r#"height="500""#));
    assert!(svg.contains(r#"id="plot0""#) && svg.contains(r#"id="plot1""#));
    assert_eq!(count(&svg, "polyline"), 2);
}

#[test]
fn fixed_axis_ends_are_kept() {
    let svg = Chart::new("t").y_min(0.0).series(Series::line("s", vec![(0.0, 2.2), (1.0, 3.7)])).to_svg();
    check_xml(&svg);
    // Ticks from 0: the axis starts at the fixed end, not at the data's 2.2.
    assert!(svg.contains(">0.0<") || svg.contains(">0<"), "{svg}");
}
