"""The Dagster wiring of an ingest instance: settings, resources, the IO manager, assets, checks,
the sensor, jobs and schedules. It connects reading, storage and statistics and contains no
parsing and no SQL."""
