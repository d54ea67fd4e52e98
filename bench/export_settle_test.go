package bench

// QuietWindow exposes quietWindow to the black-box tests.
var QuietWindow = quietWindow

// ProcStatCPU exposes procStatCPU to the black-box tests.
var ProcStatCPU = procStatCPU
