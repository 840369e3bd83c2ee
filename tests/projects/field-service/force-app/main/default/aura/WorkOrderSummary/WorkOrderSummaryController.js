({
    init : function(component) { component.set("v.ready", true); }
})
