"""Views: plotly figures, static export, and the ipywidgets explorer (nothing here trains or searches)."""
