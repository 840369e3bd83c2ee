trigger WorkOrderTrigger on Work_Order__c (before insert) {
    for (Work_Order__c wo : Trigger.new) {
        if (wo.Status__c == null) { wo.Status__c = 'Open'; }
    }
}
