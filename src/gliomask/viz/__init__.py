"""Pictures: training curves, overlays, HTML reports."""
