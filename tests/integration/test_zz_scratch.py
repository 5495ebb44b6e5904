from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, device_registry as dr
from homeassistant.helpers import issue_registry as ir


async def test_dump(hass: HomeAssistant, init_integration) -> None:
    reg = er.async_get(hass)
    for e in er.async_entries_for_config_entry(reg, init_integration.entry_id):
        s = hass.states.get(e.entity_id)
        print(
            e.entity_id,
            e.unique_id,
            s.state if s else None,
            s.attributes.get("unit_of_measurement") if s else None,
        )
    for d in dr.async_entries_for_config_entry(dr.async_get(hass), init_integration.entry_id):
        print("DEV", d.name, d.identifiers, d.model, d.serial_number, d.sw_version, d.via_device_id)
    print(ir.async_get(hass).issues)
