//! Line charts drawn as inline SVG on the server, so they need no JavaScript: a `<title>`, axis
//! labels, a text legend and an `aria-label` that says in words what the lines show. Series are
//! told apart by dash pattern and marker shape as well as colour. Every text is escaped.

use std::fmt::Write;

use crate::html::escape;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 56.0;

/// How a series is drawn: colours with at least 4.5:1 contrast on white, each with its own dash
/// pattern and marker so the lines differ without colour too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Solid,
    Dashed,
    Dotted,
}

impl Style {
    fn colour(self) -> &'static str {
        match self {
            Self::Solid => "#1e6b2e",
            Self::Dashed => "#a4161a",
            Self::Dotted => "#0b5cad",
        }
    }

    fn dash(self) -> &'static str {
        match self {
            Self::Solid => "",
            Self::Dashed => r#" stroke-dasharray="8 4""#,
            Self::Dotted => r#" stroke-dasharray="2 3""#,
        }
    }

    /// A marker at (x, y): circle, square or triangle.
    fn marker(self, x: f64, y: f64) -> String {
        let c = self.colour();
        match self {
            Self::Solid => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{c}"/>"#),
            Self::Dashed => format!(r#"<rect x="{:.1}" y="{:.1}" width="6" height="6" fill="{c}"/>"#, x - 3.0, y - 3.0),
            Self::Dotted => format!(
                r#"<path d="M{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z" fill="{c}"/>"#,
                x,
                y - 4.0,
                x + 4.0,
                y + 3.0,
                x - 4.0,
                y + 3.0
            ),
        }
    }
}

/// One line: a value per x label; `None` where there is nothing to draw (a gap).
pub struct Series {
    pub label: String,
    pub style: Style,
    pub values: Vec<Option<u64>>,
}

pub struct Chart {
    pub title: String,
    pub x_axis: String,
    pub y_axis: String,
    /// Said after a value in the summary (`" ms"`), empty for counts.
    pub unit: String,
    pub x_labels: Vec<String>,
    pub series: Vec<Series>,
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `max` (at least 1): the top of the value axis.
pub fn nice_max(max: u64) -> u64 {
    let mut step: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= max {
                return candidate;
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

/// How many grid steps divide `top` (a [`nice_max`]) into whole, round values.
fn ticks(top: u64) -> u64 {
    [4, 5, 2].into_iter().find(|n| top >= *n && top.is_multiple_of(*n)).unwrap_or(1)
}

/// A value in few characters: 950, 1.2k, 3.4M, 5G…
pub fn short(value: u64) -> String {
    const UNITS: [(u64, &str); 5] =
        [(1_000_000_000_000_000, "P"), (1_000_000_000_000, "T"), (1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")];
    for (size, suffix) in UNITS {
        if value >= size {
            let whole = value / size;
            let tenth = (value % size) / (size / 10);
            return if whole >= 100 || tenth == 0 {
                format!("{whole}{suffix}")
            } else {
                format!("{whole}.{tenth}{suffix}")
            };
        }
    }
    value.to_string()
}

impl Chart {
    /// What the chart shows, in words: each series' highest value and where.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for s in &self.series {
            let best = s.values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).fold(
                None,
                |best: Option<(usize, u64)>, (i, v)| match best {
                    Some((_, b)) if b >= v => best,
                    _ => Some((i, v)),
                },
            );
            parts.push(match best {
                Some((i, v)) => {
                    let at = self.x_labels.get(i).map(String::as_str).unwrap_or("");
                    format!("{}: highest {}{} at {at}", s.label, v, self.unit)
                }
                None => format!("{}: no data", s.label),
            });
        }
        if parts.is_empty() {
            return format!("{}: no data.", self.title);
        }
        format!("{}. {}.", self.title, parts.join("; "))
    }

    /// The `<svg>` element.
    pub fn svg(&self) -> String {
        let points = self.x_labels.len();
        let max = self.series.iter().flat_map(|s| s.values.iter().flatten()).copied().max().unwrap_or(0);
        let top = nice_max(max);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x_of = |i: usize| {
            if points <= 1 { LEFT + plot_w / 2.0 } else { LEFT + plot_w * i as f64 / (points - 1) as f64 }
        };
        let y_of = |v: u64| TOP + plot_h - plot_h * (v as f64 / top as f64);
        let legend = self.legend_places();
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg class="chart" role="img" viewBox="0 0 {WIDTH} {h}" width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg" aria-label="{label}"><title>{title}</title>"#,
            h = HEIGHT + 24.0 * legend.last().map_or(0.0, |(_, row)| row + 1.0),
            label = escape(&self.summary()),
            title = escape(&self.title),
        );
        // Grid and value axis.
        let ticks = ticks(top);
        for t in 0..=ticks {
            let v = if t == ticks { top } else { top / ticks * t };
            let y = y_of(v);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c8c8c8"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#1a1a1a">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                escape(&short(v)),
            );
        }
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#1a1a1a"/><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#1a1a1a"/>"##,
            TOP + plot_h,
            TOP + plot_h,
            WIDTH - RIGHT,
            TOP + plot_h,
        );
        // Every third x label, so they do not overlap.
        let every = points.div_ceil(8).max(1);
        for (i, label) in self.x_labels.iter().enumerate() {
            if i % every == 0 || i + 1 == points {
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#1a1a1a">{}</text>"##,
                    x_of(i),
                    TOP + plot_h + 16.0,
                    escape(label)
                );
            }
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#1a1a1a">{}</text><text x="14" y="{:.1}" text-anchor="middle" font-size="12" fill="#1a1a1a" transform="rotate(-90 14 {:.1})">{}</text>"##,
            LEFT + plot_w / 2.0,
            TOP + plot_h + 34.0,
            escape(&self.x_axis),
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.y_axis),
        );
        if max == 0 && self.series.iter().all(|s| s.values.iter().all(Option::is_none)) {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14" fill="#4a4a4a">No data in this period</text>"##,
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0
            );
        }
        for s in &self.series {
            self.line(&mut out, s, &x_of, &y_of);
        }
        // The legend: the line's look and its name in text.
        for (s, (x, row)) in self.series.iter().zip(&legend) {
            let (x, y) = (*x, HEIGHT + 24.0 * row - 2.0);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{}/>{}<text x="{:.1}" y="{:.1}" font-size="12" fill="#1a1a1a">{}</text>"##,
                x + 28.0,
                s.style.colour(),
                s.style.dash(),
                s.style.marker(x + 14.0, y),
                x + 34.0,
                y + 4.0,
                escape(&s.label),
            );
        }
        out.push_str("</svg>");
        out
    }

    /// Where each legend entry starts (x, row): side by side, wrapped at the chart's width.
    /// Widths are estimated from the label's length (about 7 units a character at size 12).
    fn legend_places(&self) -> Vec<(f64, f64)> {
        let (mut x, mut row) = (LEFT, 0.0);
        self.series
            .iter()
            .map(|s| {
                let width = 34.0 + 7.0 * s.label.chars().count() as f64 + 24.0;
                if x > LEFT && x + width > WIDTH - RIGHT {
                    (x, row) = (LEFT, row + 1.0);
                }
                let place = (x, row);
                x += width;
                place
            })
            .collect()
    }

    fn line(&self, out: &mut String, s: &Series, x_of: &dyn Fn(usize) -> f64, y_of: &dyn Fn(u64) -> f64) {
        // One polyline per run of values: a gap (None) breaks the line.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{}" stroke-width="2"{} points="{}"/>"#,
                    s.style.colour(),
                    s.style.dash(),
                    pts.join(" ")
                );
            }
            for (x, y) in run.drain(..) {
                out.push_str(&s.style.marker(x, y));
            }
        };
        for (i, v) in s.values.iter().enumerate().take(self.x_labels.len().max(1)) {
            match v {
                Some(v) => run.push((x_of(i), y_of(*v))),
                None => flush(&mut run, out),
            }
        }
        flush(&mut run, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(labels: &[&str], series: Vec<Series>) -> Chart {
        Chart {
            title: "Rows per hour".into(),
            x_axis: "Hour (UTC)".into(),
            y_axis: "Rows".into(),
            unit: String::new(),
            x_labels: labels.iter().map(|s| (*s).to_owned()).collect(),
            series,
        }
    }

    fn series(label: &str, values: &[Option<u64>]) -> Series {
        Series { label: label.into(), style: Style::Solid, values: values.to_vec() }
    }

    /// The SVG read by a strict XML reader: every element closed, every text escaped.
    fn well_formed(svg: &str) -> Vec<String> {
        let mut reader = quick_xml::Reader::from_str(svg);
        let mut names = Vec::new();
        let mut depth = 0i32;
        loop {
            match reader.read_event().expect("well-formed XML") {
                quick_xml::events::Event::Start(e) => {
                    depth += 1;
                    names.push(e.name().into_inner().to_owned());
                }
                quick_xml::events::Event::Empty(e) => names.push(e.name().into_inner().to_owned()),
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element is closed: {svg}");
        names
    }

    #[test]
    fn the_value_axis_ends_at_a_round_number() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(4_200), 5_000);
        assert_eq!(nice_max(u64::MAX), u64::MAX);
        assert_eq!(short(950), "950");
        assert_eq!(short(1_250), "1.2k");
        assert_eq!(short(3_000_000), "3M");
        assert_eq!(short(u64::MAX), "18446P");
    }

    #[test]
    fn values_are_scaled_into_the_plot() {
        let c = chart(&["00:00", "01:00", "02:00"], vec![series("Accepted", &[Some(0), Some(5), Some(10)])]);
        let svg = c.svg();
        well_formed(&svg);
        // 10 is the top (TOP), 0 the bottom (HEIGHT - BOTTOM), 5 half way; first and last x at the edges.
        let bottom = HEIGHT - BOTTOM;
        let half = TOP + (bottom - TOP) / 2.0;
        let expected = format!(
            "points=\"{LEFT:.1},{bottom:.1} {:.1},{half:.1} {:.1},{TOP:.1}\"",
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            WIDTH - RIGHT
        );
        assert!(svg.contains(&expected), "{expected} in {svg}");
        assert!(svg.contains(">10</text>"), "the top tick says 10");
        assert_eq!(c.summary(), "Rows per hour. Accepted: highest 10 at 02:00.");
    }

    #[test]
    fn an_empty_chart_says_so() {
        let c = chart(&[], vec![series("Accepted", &[])]);
        let svg = c.svg();
        let names = well_formed(&svg);
        assert!(names.contains(&"title".to_owned()));
        assert!(svg.contains("No data in this period"), "{svg}");
        assert!(!svg.contains("<polyline"), "nothing to draw");
        assert_eq!(c.summary(), "Rows per hour. Accepted: no data.");
        let nothing = chart(&["00:00"], vec![]);
        well_formed(&nothing.svg());
        assert_eq!(nothing.summary(), "Rows per hour: no data.");
    }

    #[test]
    fn one_point_is_drawn_in_the_middle_as_a_marker() {
        let c = chart(&["13:00"], vec![series("Accepted", &[Some(3)])]);
        let svg = c.svg();
        well_formed(&svg);
        let middle = LEFT + (WIDTH - LEFT - RIGHT) / 2.0;
        assert!(svg.contains(&format!("<circle cx=\"{middle:.1}\"")), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn huge_values_stay_finite_and_gaps_break_the_line() {
        let c =
            chart(&["a", "b", "c", "d"], vec![series("Latency", &[Some(u64::MAX), None, Some(1), Some(u64::MAX / 2)])]);
        let svg = c.svg();
        well_formed(&svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 1, "a gap after the first point: one line of two points");
        assert_eq!(svg.matches("<circle").count(), 3 + 1, "three markers and the legend's");
    }

    #[test]
    fn labels_are_escaped() {
        let mut c = chart(&["<b>&"], vec![series("a\"<script>'", &[Some(1)])]);
        c.title = "Rows & <things>".into();
        let svg = c.svg();
        well_formed(&svg);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("<title>Rows &amp; &lt;things&gt;</title>"), "{svg}");
        assert!(
            svg.contains(
                "aria-label=\"Rows &amp; &lt;things&gt;. a&quot;&lt;script&gt;&#39;: highest 1 at &lt;b&gt;&amp;.\""
            ),
            "{svg}"
        );
    }
}
