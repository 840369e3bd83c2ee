import { LightningElement, api, wire } from 'lwc';
import openFor from '@salesforce/apex/WorkOrderService.openFor';

export default class WorkOrderCard extends LightningElement {
    @api recordId;
    @wire(openFor, { accountId: '$recordId' }) workOrders;
}
