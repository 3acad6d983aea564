//! All errors at once: serde stops at a file's first problem, so after it the
//! loader masks the part that holds it — the step (a list item of a `steps`
//! list) or else the top-level section — with a harmless stand-in of the
//! same number of lines, and loads again, until the file loads, the cap is
//! reached or a problem shows up inside a masked part (a consequence of the
//! masking, not the file). Positions stay those of the original file.
//! Malformed YAML stops the search: what follows it cannot be trusted.

use super::error::{Diagnostic, ScenarioError};

/// Most problems reported for one file.
pub const MAX_ERRORS: usize = 20;

/// Collects further problems after `first` by re-loading masked copies of
/// `text` with `load` (which must not have side effects beyond reading).
pub(crate) fn more_errors<T>(
    first: Diagnostic,
    text: &str,
    load: impl Fn(&str) -> Result<T, ScenarioError>,
) -> ScenarioError {
    let mut found = vec![first];
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut masked: Vec<(usize, usize)> = Vec::new();
    while found.len() < MAX_ERRORS {
        let Some(last) = found.last() else { break };
        if last.is_syntax() || last.line == 0 {
            break;
        }
        let Some((start, end, stand_in)) = mask_for(&lines, last.line as usize - 1) else {
            break;
        };
        for (i, line) in lines.iter_mut().enumerate().take(end).skip(start) {
            *line = if i == start {
                stand_in.clone()
            } else {
                String::new()
            };
        }
        masked.push((start, end));
        let next = match load(&lines.join("\n")) {
            Ok(_) | Err(ScenarioError::Read { .. }) => break,
            Err(ScenarioError::Invalid(d)) => *d,
            Err(ScenarioError::Several(mut all)) => match all.drain(..).next() {
                Some(d) => d,
                None => break,
            },
        };
        let idx = (next.line as usize).wrapping_sub(1);
        let in_masked = masked.iter().any(|(a, b)| (*a..*b).contains(&idx));
        let repeated = found
            .iter()
            .any(|d| d.line == next.line && d.message == next.message);
        if next.line == 0 || in_masked || repeated || next.is_syntax() {
            break;
        }
        found.push(next);
    }
    if found.len() == 1 {
        match found.pop() {
            Some(d) => ScenarioError::Invalid(Box::new(d)),
            None => ScenarioError::Several(Vec::new()),
        }
    } else {
        found.sort_by_key(|d| (d.line, d.column));
        ScenarioError::Several(found)
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// Which lines to mask for a problem on line `idx` (0-based): `(start, end,
/// stand-in for the first line)`; `None` when nothing can be masked safely.
fn mask_for(lines: &[String], idx: usize) -> Option<(usize, usize, String)> {
    let line = |i: usize| lines.get(i).map_or("", String::as_str);
    // The top-level section holding the line.
    let top = (0..=idx.min(lines.len().saturating_sub(1)))
        .rev()
        .find(|&i| is_content(line(i)) && indent(line(i)) == 0 && !line(i).starts_with('-'))?;
    let key = line(top).split(':').next().unwrap_or("").trim().to_string();
    let top_end = (top + 1..lines.len())
        .find(|&i| is_content(line(i)) && indent(line(i)) == 0)
        .unwrap_or(lines.len());
    // Inside a `steps:` list (top-level or a scenario's): mask the one step.
    if let Some(steps) = (top..=idx)
        .rev()
        .find(|&i| line(i).trim_start().starts_with("steps:"))
    {
        if steps == idx || !line(steps).trim_start()["steps:".len()..].trim().is_empty() {
            return None;
        }
        let item_indent = (steps + 1..=idx)
            .filter(|&i| line(i).trim_start().starts_with("- "))
            .map(|i| indent(line(i)))
            .filter(|&n| n >= indent(line(steps)))
            .min()?;
        let start = (steps + 1..=idx)
            .rev()
            .find(|&i| line(i).trim_start().starts_with("- ") && indent(line(i)) == item_indent)?;
        let end = (start + 1..top_end)
            .find(|&i| is_content(line(i)) && indent(line(i)) <= item_indent)
            .unwrap_or(top_end);
        return Some((
            start,
            end,
            format!("{}- get_context", " ".repeat(item_indent)),
        ));
    }
    let stand_in = match key.as_str() {
        "name" => "name: masked".to_string(),
        "load" => "load: { vus: 1 }".to_string(),
        // Masking these would turn every later use of them into an error.
        "steps" | "scenarios" | "feeders" => return None,
        _ => String::new(),
    };
    Some((top, top_end, stand_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn masks_the_step_or_the_section() {
        let l = lines("name: x\nload:\n  vus: many\nsteps:\n  - connect\n  - send:\n      text: hi\n      bogus: 1\n  - disconnect\n");
        assert_eq!(mask_for(&l, 2), Some((1, 3, "load: { vus: 1 }".into())));
        assert_eq!(mask_for(&l, 7), Some((5, 8, "  - get_context".into())));
        assert_eq!(mask_for(&l, 3), None);
    }
}
