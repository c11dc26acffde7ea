"""From a trained detector to 3-D label maps and lesion reports."""
