"""One colour-blind-safe palette for every figure (Okabe & Ito, "Color Universal Design", 2008).

Regions: WT sky blue, TC yellow, ET vermillion (the BraTS 2024 resection cavity RC, outside them all, blue) (told apart with deuteranopia and protanopia, and by line
width: WT widest, ET narrowest, so coincident contours all stay visible). Errors: false positive
reddish purple, false negative bluish green. Line series (curves, box plots) use the same colours.
"""

REGION_COLOURS = {"WT": "#56B4E9", "TC": "#F0E442", "ET": "#D55E00", "RC": "#0072B2"}
REGION_WIDTHS = {"WT": 2.6, "TC": 2.0, "ET": 1.5, "RC": 1.5}  # points; at 100 dpi the narrowest is 2 px
ERROR_COLOURS = {"false positive": "#CC79A7", "false negative": "#009E73"}
SERIES = ("#000000", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
# Ground truth is a filled tint (nested regions stack: ET reads darkest), prediction a solid contour: where
# the two coincide, dashed and solid lines of one colour could not be told apart at viewing size.
GROUND_TRUTH_ALPHA = 0.38
PREDICTION_STYLE = "solid"
