//! Server-rendered SVG charts (plotters): no script, nothing fetched, nothing inline to allow
//! in the CSP. Each chart comes with its numbers as a table, for screen readers and for
//! copying.

use plotters::prelude::*;

use super::ledger_views::ChartView;

/// One line: a name, a colour, a value per x (`None`: no point there).
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub values: Vec<Option<f64>>,
}

pub const SERIES_BLUE: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
pub const SERIES_ORANGE: RGBColor = RGBColor(0xd9, 0x6c, 0x00);
pub const SERIES_GREEN: RGBColor = RGBColor(0x2e, 0x8b, 0x57);
pub const SERIES_RED: RGBColor = RGBColor(0xc0, 0x1c, 0x28);

fn draw(title: &str, y_desc: &str, x: &[String], series: &[Series]) -> Result<String, String> {
    let n = i32::try_from(x.len().max(2)).unwrap_or(i32::MAX);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let top = if max <= 0.0 { 1.0 } else { max * 1.15 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0..n - 1, 0f64..top)
            .map_err(|e| err(&e))?;
        let label = |i: &i32| {
            usize::try_from(*i)
                .ok()
                .and_then(|i| x.get(i))
                .cloned()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&label)
            .y_desc(y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for s in series {
            let color = s.color;
            let points: Vec<(i32, f64)> = s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i32::try_from(i).ok()?, (*v)?)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// A chart of `series` over `x`, with its table (one row per x).
pub fn chart(
    title: &str,
    y_desc: &str,
    x: &[String],
    series: Vec<Series>,
    format: fn(f64) -> String,
) -> ChartView {
    let svg = draw(title, y_desc, x, &series).unwrap_or_else(|e| {
        tracing::warn!(error = %e, chart = title, "chart not drawn");
        String::new()
    });
    let head = std::iter::once(String::new())
        .chain(series.iter().map(|s| s.name.clone()))
        .collect();
    let rows = x
        .iter()
        .enumerate()
        .map(|(i, label)| {
            std::iter::once(label.clone())
                .chain(series.iter().map(|s| {
                    s.values
                        .get(i)
                        .copied()
                        .flatten()
                        .map(format)
                        .unwrap_or_else(|| "–".into())
                }))
                .collect()
        })
        .collect();
    ChartView {
        title: title.to_owned(),
        svg,
        head,
        rows,
    }
}
