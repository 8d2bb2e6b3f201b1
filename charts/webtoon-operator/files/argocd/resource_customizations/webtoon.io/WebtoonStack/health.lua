-- Argo CD health of a WebtoonStack, read from the kstatus conditions the operator
-- writes, so that Argo CD, Flux and `kubectl wait` agree on what a stack's state is.
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "the stack is being deleted"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status and obj.status.observedGeneration
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe the current spec"
  return hs
end

-- A release that failed and an invalid spec need a person: Degraded, with the
-- operator's own words.
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message
  return hs
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  local reconciling = condition("Reconciling")
  if reconciling ~= nil and reconciling.status == "True" then
    hs.status = "Progressing"
    hs.message = reconciling.message
    return hs
  end
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end

-- A stack that served and lost a tier is Degraded; one still coming up is Progressing.
if ready ~= nil and ready.reason == "Degraded" then
  hs.status = "Degraded"
  hs.message = ready.message
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = ready.message
else
  hs.message = "waiting for the operator's first status"
end
return hs
