-- wrk script: as-you-type address searches on the demo campaign, cycling through typed,
-- abbreviated, accented, misspelt and half-typed queries (the synthetic streets of
-- `civicmap addresses synthetic`). Used by benches/addresses.sh.
local queries = {
  "12 r synthetique des acacias", "3 bis av synthetique des erables", "rue synthetique des tilleulz",
  "rue", "pl synth", "12 Rue Synthétique des Acacias", "bd synthetique", "7 ter all synthetique",
  "synthetique des chenes", "45 avenue synth", "r synth des", "1 rue synthetique des platanes",
}
for i, q in ipairs(queries) do
  queries[i] = "?q=" .. q:gsub("([^%w])", function(c) return string.format("%%%02X", string.byte(c)) end)
end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", wrk.path .. queries[(counter % #queries) + 1])
end
