"""What the plugin does while training runs: callbacks, the run report, throughput, time budget, signals,
memory cap and peaks, the content-keyed prepared-data cache."""
