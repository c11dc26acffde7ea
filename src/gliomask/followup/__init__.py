"""Follow-up imaging: one patient's timepoints compared lesion by lesion (`gliomask compare`)."""
