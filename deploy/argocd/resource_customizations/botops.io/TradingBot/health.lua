-- Argo CD health check for botops.io/TradingBot.
-- The Ready condition is the contract; the phase says why when it is not True.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report the bot's status"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. obj.metadata.generation
  return hs
end
local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
local message = status.message or ""
local phase = status.phase
if phase == "Suspended" then
  hs.status = "Suspended"
elseif phase == "Error" or phase == "Degraded" then
  hs.status = "Degraded"
elseif phase == "Running" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
else
  -- Pending, Starting, Stopping, or Running before the Ready condition caught up
  hs.status = "Progressing"
end
hs.message = phase .. (message ~= "" and (": " .. message) or "")
return hs
