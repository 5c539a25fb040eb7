"""PaySim data: the reader of data files, the generator and its calibration, the fidelity report."""
