package bench

// QuietWindow exposes quietWindow to the black-box tests.
var QuietWindow = quietWindow
