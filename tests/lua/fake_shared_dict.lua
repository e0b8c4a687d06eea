-- ngx.shared.<name> of the fake nginx (fake_nginx.lua): a dict in memory whose entries
-- expire on the fake clock. `full`: no room for a new key (what a flooded dict answers when
-- nothing can be evicted).

local Dict = {}
Dict.__index = Dict

function Dict:item(key)
    local item = self.items[key]
    if item and item.expires and item.expires <= self.now() then
        self.items[key] = nil
        return nil
    end
    return item
end

function Dict:get(key)
    local item = self:item(key)
    if not item then
        return nil
    end
    if item.flags and item.flags ~= 0 then
        return item.value, item.flags
    end
    return item.value -- a value alone, as the real one answers when the flags are 0
end

function Dict:set(key, value, exptime, flags)
    if value == nil then
        self.items[key] = nil
        return true
    end
    if self.full and not self:item(key) then
        return false, "no memory"
    end
    local expires = exptime and exptime > 0 and self.now() + exptime or nil
    self.items[key] = { value = value, flags = flags, expires = expires }
    return true
end
Dict.safe_set = Dict.set

function Dict:add(key, value, exptime, flags)
    if self:item(key) then
        return false, "exists"
    end
    return self:set(key, value, exptime, flags)
end

function Dict:incr(key, value, init, init_ttl)
    local item = self:item(key)
    if not item then
        if init == nil then
            return nil, "not found"
        end
        local ok, err = self:set(key, init + value, init_ttl)
        if not ok then
            return nil, err
        end
        return init + value
    end
    if type(item.value) ~= "number" then
        return nil, "not a number"
    end
    item.value = item.value + value
    return item.value
end

function Dict:delete(key)
    self.items[key] = nil
end

function Dict:get_keys(max)
    local keys = {}
    for key in pairs(self.items) do
        if self:item(key) then
            keys[#keys + 1] = key
        end
    end
    table.sort(keys)
    max = max == nil and 1024 or max
    if max > 0 then
        for i = #keys, max + 1, -1 do
            keys[i] = nil
        end
    end
    return keys
end

-- A new, empty dict; `now` gives the fake clock's time.
return function(now)
    return setmetatable({ items = {}, full = false, now = now }, Dict)
end
