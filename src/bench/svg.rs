//! A hand-written SVG plot of the fault-latency histograms: one panel per configuration and file
//! system, bars on power-of-two µs buckets (shared x axis), heights as a fraction of the samples.

use super::faults::Report;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Render the report's histograms as an SVG document.
pub fn histograms(r: &Report) -> String {
    let fss: Vec<_> = {
        let mut v = Vec::new();
        for row in &r.rows {
            if !v.contains(&row.fs) {
                v.push(row.fs);
            }
        }
        v
    };
    let configs: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for row in &r.rows {
            if !v.contains(&row.configuration) {
                v.push(row.configuration.clone());
            }
        }
        v
    };
    // Shared buckets: from the smallest to the largest seen.
    let lows: Vec<u64> = r.rows.iter().flat_map(|row| row.buckets.iter().map(|b| b.0)).collect();
    let lo_min = lows.iter().copied().min().unwrap_or(0);
    let lo_max = lows.iter().copied().max().unwrap_or(1);
    let mut buckets = vec![lo_min];
    while let Some(&last) = buckets.last() {
        if last >= lo_max || buckets.len() > 40 {
            break;
        }
        buckets.push(if last == 0 { 1 } else { last * 2 });
    }
    let (pw, ph, left, top, gap) = (420.0, 120.0, 60.0, 70.0, 40.0);
    let width = left + fss.len() as f64 * (pw + gap) + 20.0;
    let height = top + configs.len() as f64 * (ph + gap) + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"20\" font-size=\"15\">First-store (page fault) latency, {} pages, kernel {}, accel {}</text>\n\
         <text x=\"{left}\" y=\"38\" fill=\"#a00\">Under software emulation absolute times are not hardware times; compare shapes and ratios.</text>\n",
        r.pages,
        esc(&r.kernel),
        esc(&r.accel)
    );
    for (fi, fs) in fss.iter().enumerate() {
        let x0 = left + fi as f64 * (pw + gap);
        s.push_str(&format!(
            "<text x=\"{x0}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
            top - 12.0,
            fs.name()
        ));
        for (ci, conf) in configs.iter().enumerate() {
            let y0 = top + ci as f64 * (ph + gap);
            let Some(row) = r.rows.iter().find(|row| row.fs == *fs && &row.configuration == conf) else {
                continue;
            };
            let colour = if row.sync { "#c0392b" } else { "#2874a6" };
            s.push_str(&format!(
                "<text x=\"{x0}\" y=\"{}\">{} (avg {:.1} µs, NEEDDSYNC {})</text>\n",
                y0 - 4.0,
                esc(conf),
                row.avg_us,
                row.needdsync_faults
            ));
            s.push_str(&format!(
                "<rect x=\"{x0}\" y=\"{y0}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>\n"
            ));
            let total = row.samples.max(1) as f64;
            let bw = pw / buckets.len().max(1) as f64;
            for (bi, lo) in buckets.iter().enumerate() {
                let n = row.buckets.iter().find(|b| b.0 == *lo).map(|b| b.1).unwrap_or(0);
                let h = (n as f64 / total) * (ph - 4.0);
                let x = x0 + bi as f64 * bw;
                if n > 0 {
                    s.push_str(&format!(
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{lo}-{} µs: {n}</title></rect>\n",
                        x + 1.0,
                        y0 + ph - h,
                        (bw - 2.0).max(1.0),
                        h,
                        (lo * 2).max(1)
                    ));
                }
                if ci + 1 == configs.len() || bi % 2 == 0 {
                    s.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{lo}</text>\n",
                        x + bw / 2.0,
                        y0 + ph + 11.0
                    ));
                }
            }
        }
    }
    s.push_str(&format!(
        "<text x=\"{left}\" y=\"{}\">x: µs (power-of-two bucket lower bounds); bar height: share of samples. Red: MAP_SYNC, blue: no MAP_SYNC.</text>\n</svg>\n",
        height - 12.0
    ));
    s
}
