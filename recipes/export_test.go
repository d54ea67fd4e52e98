package recipes

// UIDRange is uidRange, for the tests of its reading of login.defs.
var UIDRange = uidRange
