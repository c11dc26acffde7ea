"""BraTS metrics (Dice, HD95, sensitivity, specificity), lesion-wise scores and COCO AP."""
