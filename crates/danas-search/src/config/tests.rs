use super::*;

fn err(text: &str) -> String {
    match SearchConfig::from_toml_str(text, Path::new("search.toml")).and_then(|c| c.validate().map(|_| c)) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_valid() {
    assert!(SearchConfig::default().validate().is_ok());
    let c = SearchConfig::from_toml_str("", Path::new("x.toml"));
    assert_eq!(c.ok(), Some(SearchConfig::default()));
}

#[test]
fn bad_settings_name_field_and_value() {
    let e = err("mcu = \"nucleo-h9000\"");
    assert!(e.contains("mcu") && e.contains("nucleo-h9000") && e.contains("nucleo-h743"), "{e}");
    let e = err("max_trials = \"ten\"");
    assert!(e.contains("search.toml") && e.contains("max_trials"), "{e}");
    let e = err("budget = \"10 minutes\"");
    assert!(e.contains("budget"), "{e}");
    let e = err("strategy = \"annealing\"");
    assert!(e.contains("strategy") && e.contains("annealing"), "{e}");
    let e = err("ram_kib = -5");
    assert!(e.contains("ram_kib") && e.contains("-5"), "{e}");
    let e = err("fixed_data = \"96,purple\"");
    assert!(e.contains("fixed_data"), "{e}");
    let e = err("colour = 3");
    assert!(e.contains("colour"), "{e}");
    let e = err("[supernet]\nsteps = 0");
    assert!(e.contains("supernet.steps"), "{e}");
    let e = err("space = \"nope\"");
    assert!(e.contains("space") && e.contains("nope"), "{e}");
    let e = err("budget = \"30m\"\nmax_trials = 0");
    assert!(e.contains("max_trials"), "{e}");
}

#[test]
fn typed_settings_and_their_old_names() {
    let c = SearchConfig::from_toml_str(
        "optimizer = \"nsga2\"\nprecision = \"f16\"\n[supernet]\nmode = \"sandwich\"",
        Path::new("x.toml"),
    );
    let c = c.map_err(|e| e.to_string());
    assert_eq!(
        c.as_ref().map(|c| (c.optimizer, c.precision, c.supernet.mode)),
        Ok((OptimizerKind::Nsga2, Precision::F16, SupernetMode::Sandwich))
    );
    // configs (and journaled studies) written before the rename still read
    let old =
        SearchConfig::from_toml_str("strategy = \"random\"\n[supernet]\nstrategy = \"sandwich\"", Path::new("x.toml"));
    let old = old.map_err(|e| e.to_string());
    assert_eq!(old.map(|c| (c.optimizer, c.supernet.mode)), Ok((OptimizerKind::Random, SupernetMode::Sandwich)));
    let e = err("[supernet]\nmode = \"half\"");
    assert!(e.contains("mode") && e.contains("half"), "{e}");
    let e = err("precision = \"int4\"");
    assert!(e.contains("precision") && e.contains("int4"), "{e}");
    let e = err("mono_base_width = 0.33\n[supernet]\nmode = \"sandwich\"");
    assert!(e.contains("supernet.mode"), "{e}");
    // the checked config keeps what the checks built
    let checked = SearchConfig { ram_kib: Some(64.0), ..SearchConfig::default() }.check().map_err(|e| e.to_string());
    assert_eq!(checked.map(|c| (c.limits.ram_bytes, c.space.cardinality() > 0)), Ok((65536, true)));
}

#[test]
fn fixed_data_and_limits() {
    let c = SearchConfig {
        space: "paper".into(),
        fixed_data: Some("96,rgb".into()),
        ram_kib: Some(64.0),
        flash_kib: Some(256.0),
        ..SearchConfig::default()
    };
    let s = c.build_space().map_err(|e| e.to_string());
    assert_eq!(s.map(|s| s.cardinality()), Ok(2680));
    let l = c.limits().map_err(|e| e.to_string());
    assert_eq!(l.map(|l| (l.ram_bytes, l.flash_bytes)), Ok((65536, 262144)));
}

#[test]
fn the_board_sets_the_limits_unless_overridden() -> Result<(), Box<dyn std::error::Error>> {
    let nano = SearchConfig { mcu: "nano33-ble".into(), ..SearchConfig::default() };
    let l = nano.limits().map_err(|e| e.to_string());
    assert_eq!(l.map(|l| (l.ram_bytes, l.flash_bytes)), Ok((224 * 1024, 1024 * 1024)));
    let over = SearchConfig { ram_kib: Some(100.0), ..nano.clone() }.limits().map_err(|e| e.to_string());
    assert_eq!(over.map(|l| (l.ram_bytes, l.flash_bytes)), Ok((100 * 1024, 1024 * 1024)));
    // A board TOML is honoured the same way, its latency limit too.
    let dir = std::env::temp_dir().join(format!("danas-board-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut p = danas_cost::Profile::builtin("rpi-pico")?;
    p.name = "my-board".into();
    p.arena_bytes = Some(100 * 1024);
    p.max_latency_ms = Some(250.0);
    let file = dir.join("board.toml");
    std::fs::write(&file, p.to_template())?;
    let c = SearchConfig { mcu: file.display().to_string(), ..SearchConfig::default() };
    let l = c.check().map(|c| c.limits).map_err(|e| e.to_string());
    assert_eq!(l, Ok(Limits { ram_bytes: 100 * 1024, flash_bytes: 2048 * 1024, latency_ms: Some(250.0) }));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
