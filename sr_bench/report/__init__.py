"""Tables, plots and reports derived from result rows."""
